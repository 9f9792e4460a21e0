"""Coupons: assigning an offer to its audience, a member activating one, a purchase applying them.

- Assignment is set-based: one `INSERT … SELECT … ON CONFLICT DO NOTHING` materialises the
  audience (everyone, a segment, or the buyers of a category in the last N days who currently
  consent to personalised offers) into MemberOffer rows, whatever its size; running it again
  only adds members who joined the audience since. The holdout is decided in the same statement
  by the deterministic hash of campaigns.experiment (sha256, first 8 bytes, the lowest
  `holdout_percent` of the hash space is the control group), salted with "offer" so that the
  control group of offer 7 is not the control group of campaign 7 (`holdout_bucket` is the same
  rule in Python).
- Activation locks the member's coupon row (compare-and-set on `activated_at`).
- Application runs inside rewards.purchases.purchase_record (a `purchase_bonus_providers` entry,
  registered in apps.py), the buyer locked: it locks the member's applicable coupon rows in id
  order, checks each against the purchase, and counts a use with a compare-and-set
  `uses < limit`, so no coupon is used more often than its limit, even by parallel purchases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from campaigns.segments import Condition, compile_condition, consent_effective_q, segment_queryset
from members.models import ConsentRecord, Member
from rewards.earning import to_eur
from rewards.models import Purchase, PurchaseLine
from rewards.purchases import PurchaseBonus

from .errors import CouponNotActivatable, CouponNotFound
from .models import MemberOffer, Offer, OfferUse

# A till's clock and ours differ by a little: a coupon activated at the till applies to the
# receipt it was activated for even if the receipt's time is a few minutes earlier.
ACTIVATION_GRACE = timedelta(minutes=5)
_HASH_SPACE = 2**64


# --- Assignment ----------------------------------------------------------------------------------

def holdout_bucket(offer_id: int, member_id: int) -> int:
    """The member's place in [0, 2**64) for this offer: campaigns.experiment.bucket's rule."""
    digest = hashlib.sha256(f"offer:{offer_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def is_holdout(offer_id: int, member_id: int, holdout_percent: int) -> bool:
    return holdout_bucket(offer_id, member_id) * 100 < holdout_percent * _HASH_SPACE


# The same rule in SQL over the audience `a`: the first 8 bytes of the hash, read as two unsigned
# 32-bit halves (a bit(64) cast to bigint would be signed).
_INSERT_SQL = """
    INSERT INTO offers_memberoffer (member_id, offer_id, assigned_at, activated_at, uses, holdout)
    SELECT h.id, %s, %s, NULL, 0,
           (('x' || '00000000' || substr(h.hex, 1, 8))::bit(64)::bigint::numeric * 4294967296
            + ('x' || '00000000' || substr(h.hex, 9, 8))::bit(64)::bigint) * 100 < %s
    FROM (SELECT a.id, encode(sha256(convert_to('offer:' || %s || ':' || a.id, 'UTF8')), 'hex') AS hex
          FROM ({audience}) a (id)) h
    ON CONFLICT (member_id, offer_id) DO NOTHING
    RETURNING holdout"""


def audience_of(offer: Offer, *, now=None) -> QuerySet[Member]:
    """The active members the offer is for (before the holdout)."""
    now = now or timezone.now()
    if offer.audience == Offer.Audience.SEGMENT:
        return segment_queryset(offer.segment, now=now)
    members = Member.objects.active()
    if offer.audience == Offer.Audience.HISTORY:
        bought = compile_condition(Condition(field="category", operator="in", value=offer.history_category,
                                             days=offer.history_days), now=now)
        # Chosen by what they bought: only with their current consent to personalised offers.
        return members.filter(bought, consent_effective_q(ConsentRecord.Purpose.PERSONALISED))
    return members


@dataclass(frozen=True)
class AssignmentReport:
    assigned: int  # new rows, holdout included
    holdout: int


@transaction.atomic
def offer_assign(*, offer_id: int) -> AssignmentReport:
    """Give the offer to every member of its audience who hasn't got it yet: one statement."""
    offer = Offer.objects.select_for_update().get(pk=offer_id)  # one assignment of an offer at a time
    now = timezone.now()
    if not offer.active or offer.valid_until < now:
        return AssignmentReport(assigned=0, holdout=0)
    audience_sql, audience_params = audience_of(offer, now=now).order_by().values("pk").query.sql_with_params()
    threshold = Decimal(offer.holdout_percent * _HASH_SPACE)
    with connection.cursor() as cursor:
        # The ORM's own SQL of the audience, its values as parameters like ours.
        cursor.execute(_INSERT_SQL.format(audience=audience_sql),
                       [offer.pk, now, threshold, str(offer.pk), *audience_params])
        rows = cursor.fetchall()
    Offer.objects.filter(pk=offer.pk).update(assigned_at=now)
    return AssignmentReport(assigned=len(rows), holdout=sum(1 for (held,) in rows if held))


def offers_assign_active(*, now=None) -> int:
    """The beat job: every offer in force is given to the members who joined its audience since
    (a purchase-history audience grows with purchases). Returns the rows added."""
    now = now or timezone.now()
    ids = Offer.objects.filter(active=True, valid_until__gte=now).values_list("pk", flat=True)
    return sum(offer_assign(offer_id=offer_id).assigned for offer_id in ids)


# --- Activation ------------------------------------------------------------------------------------

@transaction.atomic
def member_offer_activate(*, member_id: int, member_offer_id: int) -> MemberOffer:
    """The member activates one of their coupons (portal, or the till through the API).
    Activating an activated coupon again changes nothing."""
    coupon = (MemberOffer.objects.select_for_update(of=("self",)).select_related("offer")
              .filter(pk=member_offer_id, member_id=member_id, holdout=False).first())
    if coupon is None or not coupon.offer.active:
        raise CouponNotFound()
    now = timezone.now()
    if coupon.activated_at is not None:
        return coupon
    if now > coupon.offer.valid_until:
        raise CouponNotActivatable(detail=_("it has expired"))
    if now < coupon.offer.valid_from:
        raise CouponNotActivatable(detail=_("it is not valid yet"))
    MemberOffer.objects.filter(pk=coupon.pk, activated_at__isnull=True).update(activated_at=now)
    coupon.activated_at = now
    return coupon


# --- Application on a purchase -------------------------------------------------------------------

def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _matching_lines(offer: Offer, lines: Sequence[PurchaseLine]) -> list[bool]:
    def matches(line: PurchaseLine) -> bool:
        if offer.category and offer.category.casefold() != line.category.casefold():
            return False
        return not (offer.sku and offer.sku.casefold() != line.sku.casefold())
    return [matches(line) for line in lines]


def coupon_bonus(offer: Offer, purchase: Purchase, lines: Sequence[PurchaseLine]) -> PurchaseBonus | None:
    """What the coupon adds to the purchase, or None if the purchase doesn't match it.

    Multiplier: (value − 1) × the points the matching lines earned before (2.00 doubles them).
    Bonus: the points, spread over the matching lines by amount. Minimum spend: the matching
    lines' amount in EUR."""
    if offer.store_id is not None and purchase.store_id != offer.store_id:
        return None
    matching = _matching_lines(offer, lines)
    if not any(matching):
        return None
    spend = sum((line.amount for line, hit in zip(lines, matching, strict=True) if hit), Decimal(0))
    if offer.min_spend is not None and to_eur(spend, purchase.currency) < offer.min_spend:
        return None
    if offer.effect == Offer.Effect.MULTIPLIER:
        weights = [Decimal(line.points) if hit else Decimal(0) for line, hit in zip(lines, matching, strict=True)]
        points = _floor(sum(weights, Decimal(0)) * (offer.value - 1))
    else:
        weights = [line.amount if hit else Decimal(0) for line, hit in zip(lines, matching, strict=True)]
        points = _floor(offer.value)
    if points <= 0:
        return None
    with override("de"):
        label_de = offer.name
    return PurchaseBonus(points=points, line_weights=weights, label_de=label_de, label_en=offer.name_en)


def coupons_apply(member: Member, purchase: Purchase) -> list[PurchaseBonus]:
    """The purchase's provider (rewards.purchases.purchase_bonus_providers): every activated,
    valid coupon of the member that the purchase matches, each within its limit."""
    coupons = list(MemberOffer.objects.applicable(purchase.occurred_at)
                   .filter(member_id=member.pk, activated_at__lte=purchase.occurred_at + ACTIVATION_GRACE)
                   .select_related("offer").select_for_update(of=("self",)).order_by("pk"))
    lines = list(purchase.lines.all())
    bonuses: list[PurchaseBonus] = []
    for coupon in coupons:
        bonus = coupon_bonus(coupon.offer, purchase, lines)
        if bonus is None:
            continue
        # Compare-and-set after the lock: a use above the limit is impossible, whoever raced us.
        counted = MemberOffer.objects.filter(pk=coupon.pk, uses__lt=coupon.offer.uses_per_member).update(
            uses=F("uses") + 1)
        if not counted:
            continue
        OfferUse.objects.create(member_offer=coupon, purchase=purchase, points=bonus.points)
        bonuses.append(bonus)
    return bonuses
