"""Reads: a member's coupons, the console's counts and an offer's uplift over its holdout."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Least, Now
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from campaigns.experiment import Uplift, uplift
from campaigns.segments import eur_amount
from members.models import Member
from rewards.models import Purchase

from .models import MemberOffer, Offer


def coupons_of(member: Member, *, include_expired: bool = False) -> QuerySet[MemberOffer]:
    """The member's own coupons (never a holdout row), soonest to end first."""
    coupons = MemberOffer.objects.visible().filter(member=member).select_related("offer", "offer__store")
    if not include_expired:
        coupons = coupons.filter(offer__valid_until__gte=timezone.now())
    return coupons.order_by("offer__valid_until", "pk")


@dataclass(frozen=True)
class CouponView:
    """One coupon as the member (portal) and the till (API) see it."""

    coupon: MemberOffer

    @property
    def offer(self) -> Offer:
        return self.coupon.offer

    @property
    def state(self) -> str:
        now = timezone.now()
        if self.coupon.uses >= self.offer.uses_per_member:
            return "used"
        if now > self.offer.valid_until:
            return "expired"
        if self.coupon.activated_at is not None:
            return "activated"
        if now < self.offer.valid_from:
            return "upcoming"
        return "available"

    @property
    def uses_left(self) -> int:
        return max(0, self.offer.uses_per_member - self.coupon.uses)

    @property
    def effect(self) -> str:
        return offer_effect_text(self.offer)

    @property
    def conditions(self) -> list[str]:
        return offer_condition_texts(self.offer)


def offer_effect_text(offer: Offer) -> str:
    if offer.effect == Offer.Effect.MULTIPLIER:
        plain = format(offer.value, "f").rstrip("0").rstrip(".")  # 2.00 -> 2, 1.50 -> 1.5 (not 2E+1)
        return _("%(factor)s× points") % {"factor": number_format(Decimal(plain))}
    return _("+%(points)s bonus points") % {"points": number_format(int(offer.value), force_grouping=True)}


def offer_condition_texts(offer: Offer) -> list[str]:
    texts = []
    if offer.category:
        texts.append(_("on products of the category %(category)s") % {"category": offer.category})
    if offer.sku:
        texts.append(_("on the product %(sku)s") % {"sku": offer.sku})
    if offer.store_id is not None:
        texts.append(_("in the store %(store)s") % {"store": offer.store.name})
    if offer.min_spend:
        texts.append(_("from %(amount)s EUR") % {"amount": number_format(offer.min_spend, decimal_pos=2)})
    if offer.uses_per_member > 1:
        texts.append(_("up to %(count)s purchases") % {"count": offer.uses_per_member})
    return texts


def coupon_views(member: Member, *, include_expired: bool = False) -> list[CouponView]:
    return [CouponView(coupon) for coupon in coupons_of(member, include_expired=include_expired)]


# --- Uplift ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arm:
    """The treated members (got the coupon) or the holdout, over the offer's period so far."""

    size: int
    activated: int
    redeemed: int
    buyers: int  # members with at least one purchase in the period
    purchases: int
    spend: Decimal  # EUR, net of returns

    @property
    def purchases_per_member(self) -> Decimal | None:
        return (Decimal(self.purchases) / self.size).quantize(Decimal("0.01")) if self.size else None

    @property
    def spend_per_member(self) -> Decimal | None:
        return (self.spend / self.size).quantize(Decimal("0.01")) if self.size else None


EMPTY_ARM = Arm(size=0, activated=0, redeemed=0, buyers=0, purchases=0, spend=Decimal(0))


@dataclass(frozen=True)
class OfferResults:
    treated: Arm
    holdout: Arm
    uplift: Uplift | None  # share of buyers, treated over holdout, with its 95 % interval

    @property
    def spend_difference(self) -> Decimal | None:
        if self.treated.spend_per_member is None or self.holdout.spend_per_member is None:
            return None
        return self.treated.spend_per_member - self.holdout.spend_per_member


def offer_results(offer: Offer) -> OfferResults:
    """Per arm: members, activated, redeemed, buyers, purchases and spend in the offer's period
    (from its start to its end, or to now while it runs). One aggregate query: the per-member
    purchase figures are correlated subqueries summed in the GROUP BY over the arm."""
    in_period = (Purchase.objects.filter(member=OuterRef("member_id"), occurred_at__gte=offer.valid_from,
                                         occurred_at__lte=Least(Value(offer.valid_until), Now()))
                 .order_by().values("member"))
    money = DecimalField(max_digits=14, decimal_places=2)
    count = Coalesce(Subquery(in_period.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()),
                     Value(0))
    spend = Coalesce(Subquery(in_period.annotate(total=Sum(eur_amount())).values("total")[:1], output_field=money),
                     Value(Decimal(0)), output_field=money)
    rows = (MemberOffer.objects.filter(offer=offer).annotate(bought=count, spent=spend).order_by()
            .values("holdout")
            .annotate(size=Count("pk"), activated=Count("pk", filter=Q(activated_at__isnull=False)),
                      redeemed=Count("pk", filter=Q(uses__gt=0)), buyers=Count("pk", filter=Q(bought__gt=0)),
                      purchases=Sum("bought"), spend=Sum("spent")))
    arms = {row["holdout"]: Arm(size=row["size"], activated=row["activated"], redeemed=row["redeemed"],
                                buyers=row["buyers"], purchases=row["purchases"] or 0,
                                spend=row["spend"] or Decimal(0)) for row in rows}
    treated, holdout = arms.get(False, EMPTY_ARM), arms.get(True, EMPTY_ARM)
    return OfferResults(treated=treated, holdout=holdout,
                        uplift=uplift(conversions=treated.buyers, size=treated.size,
                                      control_conversions=holdout.buyers, control_size=holdout.size))


def offer_counts(offer_ids: list[int]) -> dict[int, dict[str, int]]:
    """Assigned (treated) / activated / redeemed per offer for the changelist: one query."""
    rows = (MemberOffer.objects.filter(offer_id__in=offer_ids, holdout=False).order_by().values("offer_id")
            .annotate(assigned=Count("pk"), activated=Count("pk", filter=Q(activated_at__isnull=False)),
                      redeemed=Count("pk", filter=Q(uses__gt=0))))
    return {row["offer_id"]: row for row in rows}
