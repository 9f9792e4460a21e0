"""How offers hooks into purchases without rewards knowing it (registered in apps.py).

The buyer's lock reads along whether the member has an activated, unused coupon of an offer in
force (most members: no, and then no query of ours runs at all); if so, rewards asks
`coupons_apply` for the points to add while it records the purchase.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.db.models.functions import Now

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
