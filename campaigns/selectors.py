"""Reads: a campaign's progress and results, a segment's audience, a raffle's proof."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, DateTimeField, DecimalField, Exists, ExpressionWrapper, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from members.models import Member

from .experiment import Uplift, uplift
from .models import Campaign, Message, RaffleEntry, Segment
from .segments import eur_amount, segment_queryset


@dataclass(frozen=True)
class Arm:
    """One variant (or the control group): members, conversions within the window, revenue."""

    label: str
    variant_id: int | None
    size: int
    conversions: int
    revenue: Decimal
    uplift: Uplift | None = None

    @property
    def rate(self) -> float | None:
        return self.conversions / self.size if self.size else None

    @property
    def rate_percent(self) -> float | None:
        return self.conversions * 100 / self.size if self.size else None


@dataclass
class CampaignResults:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    unsubscribed: int = 0
    arms: list[Arm] = field(default_factory=list)
    control: Arm | None = None
    treatment: Arm | None = None  # all variants together

    @property
    def sent(self) -> int:
        return self.by_status.get(Message.Status.SENT, 0)

    @property
    def failed(self) -> int:
        return self.by_status.get(Message.Status.FAILED, 0)

    @property
    def pending(self) -> int:
        return self.by_status.get(Message.Status.QUEUED, 0) + self.by_status.get(Message.Status.SENDING, 0)

    @property
    def done_percent(self) -> int:
        return 100 if not self.total else (self.total - self.pending) * 100 // self.total

    @property
    def conversions(self) -> int:
        return sum(arm.conversions for arm in [*self.arms, *([self.control] if self.control else [])])

    @property
    def revenue(self) -> Decimal:
        return sum((arm.revenue for arm in [*self.arms, *([self.control] if self.control else [])]), Decimal(0))


def campaign_progress(campaign: Campaign) -> CampaignResults:
    """Counts by status and skip reason: one GROUP BY on the (campaign, status) index."""
    results = CampaignResults()
    rows = (Message.objects.filter(campaign=campaign).order_by().values("status", "skip_reason")
            .annotate(n=Count("id")))
    for row in rows:
        results.total += row["n"]
        results.by_status[row["status"]] = results.by_status.get(row["status"], 0) + row["n"]
        if row["skip_reason"]:
            results.skipped_by_reason[row["skip_reason"]] = row["n"]
    return results


def campaign_results(campaign: Campaign) -> CampaignResults:
    """Progress plus the experiment: for every variant (members sent the message) and for the
    control group (eligible members held out), the members who bought within the attribution
    window after their message or holdout, the revenue of those purchases (EUR, net of
    returns) and the uplift over the control group with a 95 % confidence interval."""
    from rewards.models import Purchase

    results = campaign_progress(campaign)
    results.unsubscribed = Message.objects.filter(campaign=campaign, unsubscribed_at__isnull=False).count()
    window = timedelta(days=campaign.attribution_days)
    in_window = Purchase.objects.filter(
        member=OuterRef("member_id"), occurred_at__gte=OuterRef("processed_at"),
        occurred_at__lt=ExpressionWrapper(OuterRef("processed_at") + window, output_field=DateTimeField()),
    )
    revenue = Subquery(in_window.order_by().values("member").annotate(total=Sum(eur_amount())).values("total")[:1],
                       output_field=DecimalField(max_digits=14, decimal_places=2))
    measured = (Message.objects.filter(campaign=campaign, processed_at__isnull=False)
                .filter(Q(status=Message.Status.SENT) | Q(skip_reason=Message.SkipReason.HOLDOUT))
                .annotate(converted=Exists(in_window), revenue=Coalesce(revenue, Decimal(0)))
                .order_by().values("variant_id", "is_control")
                .annotate(size=Count("id"), conversions=Count("id", filter=Q(converted=True)),
                          revenue_total=Sum("revenue")))
    names = dict(campaign.variants.values_list("pk", "name"))
    control = None
    arms = []
    for row in measured:
        if row["is_control"]:
            control = Arm("control", None, row["size"], row["conversions"], row["revenue_total"] or Decimal(0))
        else:
            arms.append(Arm(names.get(row["variant_id"], "?"), row["variant_id"], row["size"], row["conversions"],
                            row["revenue_total"] or Decimal(0)))
    arms.sort(key=lambda arm: arm.label)
    if control is not None:
        arms = [_with_uplift(arm, control) for arm in arms]
    if arms:
        pooled = Arm("all", None, sum(a.size for a in arms), sum(a.conversions for a in arms),
                     sum((a.revenue for a in arms), Decimal(0)))
        results.treatment = _with_uplift(pooled, control) if control else pooled
    results.arms, results.control = arms, control
    return results


def _with_uplift(arm: Arm, control: Arm) -> Arm:
    return Arm(arm.label, arm.variant_id, arm.size, arm.conversions, arm.revenue,
               uplift(conversions=arm.conversions, size=arm.size, control_conversions=control.conversions,
                      control_size=control.size))


@dataclass(frozen=True)
class AudiencePreview:
    count: int
    sample: list[Member]


def segment_preview(segment: Segment | None, *, sample_size: int = 10) -> AudiencePreview:
    members = segment_queryset(segment)
    sample = list(members.select_related("tier").order_by("-pk")[:sample_size])
    return AudiencePreview(count=members.count(), sample=sample)


def raffle_verify(campaign: Campaign) -> bool:
    """Re-run the recorded draw: the same entries (fingerprint) and seed give the same winners."""
    from .raffles import draw_winners, entries_fingerprint

    if campaign.drawn_at is None:
        return False
    entries = list(RaffleEntry.objects.filter(campaign=campaign).order_by("pk").values_list("pk", "member_id"))
    if entries_fingerprint(entries) != campaign.draw_entries_hash:
        return False
    expected = set(draw_winners(entries, seed=campaign.draw_seed, count=campaign.winners_count))
    actual = set(RaffleEntry.objects.filter(campaign=campaign, won=True).values_list("pk", flat=True))
    return expected == actual


def campaign_progress_by_id(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Sent / pending / total per campaign for the changelist: one query for the page."""
    rows = (Message.objects.filter(campaign_id__in=campaign_ids).order_by().values("campaign_id")
            .annotate(total=Count("id"), sent=Count("id", filter=Q(status=Message.Status.SENT)),
                      pending=Count("id", filter=Q(status__in=[Message.Status.QUEUED, Message.Status.SENDING]))))
    return {row["campaign_id"]: row for row in rows}

