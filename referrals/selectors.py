"""Reads for the console: per-programme figures and top referrers, each in one query."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from .models import Referral, ReferralProgram

CONVERTED = Q(referrals__status__in=[Referral.Status.QUALIFIED, Referral.Status.REWARDED])


def programs_with_stats(queryset: QuerySet[ReferralProgram] | None = None) -> QuerySet[ReferralProgram]:
    """Programmes annotated with their referral figures (one GROUP BY, no query per row)."""
    queryset = queryset if queryset is not None else ReferralProgram.objects.all()
    return queryset.annotate(
        referral_count=Count("referrals"),
        converted_count=Count("referrals", filter=CONVERTED),
        rewarded_count=Count("referrals", filter=Q(referrals__status=Referral.Status.REWARDED)),
        review_count=Count("referrals", filter=Q(referrals__status__in=Referral.OPEN_STATUSES,
                                                 referrals__reviewed_at__isnull=True)
                           & ~Q(referrals__review_reasons=[])),
        points_paid=Sum("referrals__referrer_points", default=0) + Sum("referrals__referee_points", default=0),
        vouchers_paid=Count("referrals", filter=Q(referrals__referrer_voucher__isnull=False))
        + Count("referrals", filter=Q(referrals__referee_voucher__isnull=False)),
    )


def conversion_rate(program) -> float | None:
    """Share of referrals that reached the qualifying event (qualified or rewarded), in percent."""
    if not getattr(program, "referral_count", 0):
        return None
    return round(100 * program.converted_count / program.referral_count, 1)


@dataclass(frozen=True)
class TopReferrer:
    member_id: int
    name: str
    customer_number: str
    referrals: int
    rewarded: int
    points: int


def top_referrers(program: ReferralProgram, limit: int = 10) -> list[TopReferrer]:
    rows = (Referral.objects.filter(program=program).values(
        "referrer_id", "referrer__first_name", "referrer__last_name", "referrer__customer_number")
        .annotate(total=Count("pk"), rewarded=Count("pk", filter=Q(status=Referral.Status.REWARDED)),
                  points=Sum("referrer_points", default=0))
        .order_by("-rewarded", "-total", "referrer_id")[:limit])
    return [TopReferrer(member_id=row["referrer_id"],
                        name=f"{row['referrer__first_name']} {row['referrer__last_name']}".strip(),
                        customer_number=row["referrer__customer_number"], referrals=row["total"],
                        rewarded=row["rewarded"], points=row["points"]) for row in rows]


def status_counts(program: ReferralProgram) -> dict[str, int]:
    counts = dict(Referral.objects.filter(program=program).values_list("status").annotate(n=Count("pk")))
    return {label: counts.get(value, 0) for value, label in Referral.Status.choices}
