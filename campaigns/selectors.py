"""Reads: a campaign's progress and results, a segment's audience, a raffle's proof."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, DateTimeField, DecimalField, Exists, ExpressionWrapper, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

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


@dataclass(frozen=True)
class Comparison:
    """Variant `label` against variant `baseline`: the difference of their conversion rates."""

    label: str
    baseline: str
    uplift: Uplift | None


@dataclass
class CampaignResults:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    unsubscribed: int = 0
    arms: list[Arm] = field(default_factory=list)
    control: Arm | None = None
    treatment: Arm | None = None  # all variants together
    comparisons: list[Comparison] = field(default_factory=list)  # the variants against each other

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
    results.comparisons = variants_compared(arms)
    return results


def variants_compared(arms: list[Arm]) -> list[Comparison]:
    """Every variant against every earlier one (B against A, C against A and B …), with the same
    interval as the uplift over the control group: which text did better, not only whether each
    did better than nothing."""
    return [Comparison(later.label, earlier.label,
                       uplift(conversions=later.conversions, size=later.size,
                              control_conversions=earlier.conversions, control_size=earlier.size))
            for index, earlier in enumerate(arms) for later in arms[index + 1:]]


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
    """Re-run the recorded draw: the revealed seed matches the hash published before, the
    tickets match the fingerprint, and the seed and fingerprint give the same winners."""
    from .raffles import draw_winners, legacy_draw_winners, legacy_entries_fingerprint, seed_hash, tickets_fingerprint

    if campaign.drawn_at is None:
        return False
    actual = set(RaffleEntry.objects.filter(campaign=campaign, won=True).values_list("pk", flat=True))
    if not campaign.draw_seed_hash:  # drawn before seeds were committed: the proof of its time
        entries = list(RaffleEntry.objects.filter(campaign=campaign).order_by("pk").values_list("pk", "member_id"))
        if legacy_entries_fingerprint(entries) != campaign.draw_entries_hash:
            return False
        return set(legacy_draw_winners(entries, seed=campaign.draw_seed, count=campaign.winners_count)) == actual
    if seed_hash(campaign.draw_seed) != campaign.draw_seed_hash:
        return False
    tickets = list(RaffleEntry.objects.filter(campaign=campaign).values_list("pk", flat=True))
    fingerprint = tickets_fingerprint(tickets)
    if fingerprint != campaign.draw_entries_hash:
        return False
    return set(draw_winners(tickets, seed=campaign.draw_seed, fingerprint=fingerprint,
                            count=campaign.winners_count)) == actual


def raffle_tickets(campaign: Campaign) -> list[int]:
    return list(RaffleEntry.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))


def raffle_public(pk: int) -> Campaign | None:
    """A raffle whose seed is committed: its public page exists from then on."""
    return (Campaign.objects.filter(pk=pk, kind=Campaign.Kind.RAFFLE).exclude(draw_seed_hash="")
            .annotate(entries_count=Count("raffle_entries")).first())


def raffle_winning_tickets(campaign: Campaign) -> list[int]:
    return list(RaffleEntry.objects.filter(campaign=campaign, won=True).order_by("pk").values_list("pk", flat=True))


# --- The member's side (the portal) -------------------------------------------------------------

@dataclass(frozen=True)
class RaffleOffer:
    """An open raffle as a member sees it: their entry if they have one, else why they can't
    enter (None: they can)."""

    campaign: Campaign
    entry: RaffleEntry | None
    problem: str | None


def raffles_open_for(member: Member, *, now: datetime | None = None, limit: int = 10) -> list[RaffleOffer]:
    """The open raffles whose audience the member is in: four queries, however many raffles."""
    from django.utils.translation import gettext as _

    now = now or timezone.now()
    raffles = list(Campaign.objects.filter(kind=Campaign.Kind.RAFFLE, status__in=[Campaign.Status.SENDING,
                                                                                   Campaign.Status.DONE],
                                           drawn_at__isnull=True, entry_deadline__gt=now)
                   .exclude(draw_seed_hash="").select_related("segment", "prize")
                   .prefetch_related("segment__conditions").order_by("entry_deadline", "pk")[:limit])
    if not raffles:
        return []
    audiences = {f"in_{campaign.pk}": Exists(segment_queryset(campaign.segment, now=now).filter(pk=OuterRef("pk")))
                 for campaign in raffles}
    invited = Member.objects.filter(pk=member.pk).annotate(**audiences).values(*audiences).first() or {}
    entries = {entry.campaign_id: entry for entry in
               RaffleEntry.objects.filter(member=member, campaign__in=raffles)}
    offers = []
    for campaign in raffles:
        entry = entries.get(campaign.pk)
        if entry is None and not invited.get(f"in_{campaign.pk}"):
            continue
        problem = None
        if entry is None and member.status != Member.Status.ACTIVE:
            problem = _("Your membership is not active.")
        elif entry is None and member.points_balance < campaign.entry_points:
            problem = _("You need %(points)s points to take part.") % {"points": campaign.entry_points}
        offers.append(RaffleOffer(campaign=campaign, entry=entry, problem=problem))
    return offers


def raffle_entries_of(member: Member):
    """The member's own entries, newest first, with what the page shows of each."""
    return (RaffleEntry.objects.filter(member=member).select_related("campaign", "prize__reward")
            .order_by("-created_at", "-pk"))


def campaign_progress_by_id(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Sent / pending / total per campaign for the changelist: one query for the page."""
    rows = (Message.objects.filter(campaign_id__in=campaign_ids).order_by().values("campaign_id")
            .annotate(total=Count("id"), sent=Count("id", filter=Q(status=Message.Status.SENT)),
                      pending=Count("id", filter=Q(status__in=[Message.Status.QUEUED, Message.Status.SENDING]))))
    return {row["campaign_id"]: row for row in rows}

