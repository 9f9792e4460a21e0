"""What referrals does when a purchase is recorded (see core/events.py); registered in ready()."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Exists, OuterRef, Q

from core.events import subscribe
from members.gdpr import export_section
from members.models import Member
from members.privacy import PersonalValues, personal_data_scrubber, scrub_rows
from rewards.events import PurchaseRecorded
from rewards.ledger import buyer_annotations
from rewards.models import Purchase

from .models import Referral

REFERRAL_PENDING = "referral_pending"


def _referral_pending() -> Exists:
    return Exists(Referral.objects.filter(referee_id=OuterRef("pk"), status=Referral.Status.PENDING))


# The buyer's lock reads whether a referral waits for the member (most members: no, and no query
# for it then): the flag comes back in the event's `buyer_flags`.
buyer_annotations[REFERRAL_PENDING] = _referral_pending


@subscribe(PurchaseRecorded)
def referral_qualifies_with_a_purchase(events: Sequence[PurchaseRecorded]) -> None:
    """Inside the purchase's transaction: a referral qualifies with its purchase or not at all.
    It only updates the referral row; the payment (which locks the referrer too) runs after commit."""
    from .services import referral_purchase_recorded

    for event in events:
        if REFERRAL_PENDING in event.buyer_flags:
            referral_purchase_recorded(Purchase.objects.get(pk=event.purchase_id))


@export_section("referrals")
def referrals_of_the_export(member: Member, people: list[int]) -> list[dict]:
    """The member's data export (members.gdpr): referrals made and the one received."""
    from .services import referrals_export

    return referrals_export(member)


@personal_data_scrubber
def scrub_referrals(member_ids: list[int], values: PersonalValues) -> None:
    """Erasure (members.privacy): a reject reason typed by staff may name the person."""
    scrub_rows(Referral.objects.filter(Q(referrer_id__in=member_ids) | Q(referee_id__in=member_ids))
               .exclude(reject_reason=""), values, ["reject_reason"])
