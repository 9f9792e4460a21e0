"""Donation rewards: the services and the reads behind the console's totals.

- Redeeming a donation reward goes through the one redemption path (rewards.vouchers._issue:
  member row locked, then the reward; availability, limits, stock and balance checked after
  the locks). What it writes is this module's: a `Redemption` with status DONATED, no code and
  no expiry date, a `Donation` with the cause and the euros, and the ledger entry (source
  "donation", referenced by the redemption's id, so it is paid and refunded once).
- A donation never expires and no till can take it: the voucher paths all ask for status
  ISSUED or a code.
- Reversal (`donation_cancel`, staff with `rewards.cancel_redemption`): allowed while the
  donation's calendar month (programme time zone) is still running. The monthly totals are
  what finance pays out from (the export per cause and month), so a month that has ended is
  closed: a mistake in it is put right with a points adjustment, not by changing a paid month.
  A cancelled donation gives the points and the stock back and drops out of every total. An
  erased member's donation is not cancelled (nobody to give the points to).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from core.stored_texts import both_languages, stored_text
from members.models import Member

from .errors import DonationNotCancellable
from .ledger import member_lock_live, post_entry
from .models import Donation, DonationCause, PointEntry, Redemption, Reward

LEDGER_SOURCE = "donation"
REFUND_SOURCE = "donation-refund"


def donation_record(member: Member, reward: Reward, *, points: int, source: str,
                    partner_id: int | None = None) -> Redemption:
    """Write a donation for a reward already checked under the member's and the reward's locks
    (called by rewards.vouchers._issue, which also takes the stock)."""
    now = timezone.now()
    redemption = Redemption.objects.create(member=member, reward=reward, points=points, code=None, source=source,
                                           status=Redemption.Status.DONATED, issued_at=now, expires_at=None)
    Donation.objects.create(member=member, cause_id=reward.cause_id, reward=reward, redemption=redemption,
                            points=points, amount=reward.value, created_at=now)
    if points:
        post_entry(member, kind=PointEntry.Kind.REDEEM, points=-points, source=LEDGER_SOURCE,
                   reference=str(redemption.pk),
                   reason=stored_text("donation", cause=both_languages(reward.cause, "name")),
                   redemption_id=redemption.pk, partner_id=partner_id)
    return redemption


def month_start(at: datetime) -> datetime:
    """The first moment of `at`'s calendar month in the programme's time zone."""
    local = timezone.localtime(at)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@transaction.atomic
def donation_cancel(*, donation_id: int) -> Donation:
    """Staff reverse a donation of the running month: the points and the stock come back, the
    donation leaves the totals. Compare-and-set on the redemption, so a donation is reversed once."""
    owner_id = Redemption.objects.values_list("member_id", flat=True).get(donation__pk=donation_id)
    member = member_lock_live(owner_id)
    now = timezone.now()
    donation = Donation.objects.select_related("reward", "cause").get(pk=donation_id)
    # An erased member's donation stays as given: there is no one to give the points back to.
    if donation.member_id is None or donation.created_at < month_start(now):
        raise DonationNotCancellable()
    changed = Redemption.objects.filter(pk=donation.redemption_id, status=Redemption.Status.DONATED).update(
        status=Redemption.Status.CANCELLED, cancelled_at=now)
    if not changed:
        raise DonationNotCancellable()
    Donation.objects.filter(pk=donation.pk).update(cancelled_at=now)
    donation.cancelled_at = now
    if donation.points:
        post_entry(member, kind=PointEntry.Kind.REFUND, points=donation.points, source=REFUND_SOURCE,
                   reference=str(donation.redemption_id),
                   reason=stored_text("donation-cancelled", cause=both_languages(donation.cause, "name")),
                   redemption_id=donation.redemption_id)
    if donation.reward.stock is not None:
        Reward.objects.filter(pk=donation.reward_id).update(stock=F("stock") + 1)
    return donation


# --- Reads ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive

    def condition(self, prefix: str = "") -> Q:
        condition = Q()
        if self.start is not None:
            condition &= Q(**{f"{prefix}created_at__gte": self.start})
        if self.end is not None:
            condition &= Q(**{f"{prefix}created_at__lt": self.end})
        return condition


def causes_with_totals(queryset: QuerySet[DonationCause] | None = None, *,
                       period: Period = Period()) -> QuerySet[DonationCause]:
    """Each cause with its donations' count, points and euros in `period` (cancelled ones not
    counted): one query with the aggregates as annotations, whatever the number of causes."""
    queryset = DonationCause.objects.all() if queryset is None else queryset
    counted = Q(donations__cancelled_at__isnull=True) & period.condition("donations__")
    return queryset.annotate(
        donation_count=Count("donations", filter=counted),
        donated_points=Sum("donations__points", filter=counted, default=0),
        donated_amount=Sum("donations__amount", filter=counted, default=Decimal("0")),
    )


def totals_per_cause_and_month(*, period: Period = Period(), cause_ids: list[int] | None = None):
    """Rows of (cause, month, count, points, euros) for the payout export: one grouped query.
    Months in the programme's time zone."""
    donations = Donation.objects.counted().filter(period.condition())
    if cause_ids is not None:
        donations = donations.filter(cause_id__in=cause_ids)
    return (donations.annotate(month=TruncMonth("created_at"))
            .values("cause_id", "month", cause_name=F("cause__name_de"), organisation=F("cause__organisation"))
            .annotate(donation_count=Count("id"), donated_points=Sum("points"), donated_amount=Sum("amount"))
            .order_by("month", "cause_name", "cause_id"))


def member_donated_total(member: Member) -> Decimal:
    """What the member has given in euros, cancelled donations aside."""
    return (Donation.objects.counted().filter(member=member)
            .aggregate(total=Sum("amount", default=Decimal("0")))["total"])
