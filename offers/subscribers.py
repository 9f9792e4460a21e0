"""How offers hooks into purchases without rewards knowing it (registered in apps.py).

The buyer's lock reads along whether the member has an activated, unused coupon of an offer in
force (most members: no, and then no query of ours runs at all); if so, rewards asks
`coupons_apply` for the points to add while it records the purchase.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Exists, OuterRef
from django.db.models.functions import Now

from core.events import subscribe
from members.events import MembersMerged
from members.gdpr import export_section
from members.models import Member
from rewards.ledger import buyer_annotations
from rewards.purchases import purchase_bonus_providers

from .models import MemberOffer

OFFER_ACTIVATED = "offer_activated"


def _offer_activated() -> Exists:
    return Exists(MemberOffer.objects.applicable(Now()).filter(member_id=OuterRef("pk")))


def register() -> None:
    from .services import coupons_apply

    buyer_annotations[OFFER_ACTIVATED] = _offer_activated
    purchase_bonus_providers[OFFER_ACTIVATED] = coupons_apply


@subscribe(MembersMerged)
def coupons_follow_the_merge(events: Sequence[MembersMerged]) -> None:
    """The duplicate's coupons move to the survivor, except offers the survivor has already (their
    uses count per person: the survivor keeps its own row, the duplicate's stays behind)."""
    for event in events:
        has_it = MemberOffer.objects.filter(member_id=event.member_id, offer_id=OuterRef("offer_id"))
        (MemberOffer.objects.filter(member_id=event.duplicate_id).exclude(Exists(has_it))
         .update(member_id=event.member_id))


@export_section("coupons")
def coupons_of_the_export(member: Member, people: list[int]) -> list[dict]:
    """The member's data export (members.gdpr): the coupons shown to them and what they did."""
    rows = MemberOffer.objects.visible().filter(member_id__in=people).select_related("offer").order_by("pk")
    return [{"coupon": row.offer.name, "valid_from": row.offer.valid_from.isoformat(),
             "valid_until": row.offer.valid_until.isoformat(), "assigned_at": row.assigned_at.isoformat(),
             "activated_at": row.activated_at.isoformat() if row.activated_at else None, "uses": row.uses}
            for row in rows]
