"""Reads of challenges and badges for the portal, the API and the console."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from members.models import Member

from .models import Challenge, ChallengeContribution, ChallengeProgress, MemberBadge
from .streaks import member_streak, streak_length


@dataclass(frozen=True)
class ChallengeCard:
    challenge: Challenge
    value: Decimal
    completed_at: datetime | None
    rewarded: bool

    @property
    def target(self) -> Decimal:
        return self.challenge.target

    @property
    def percent(self) -> int:
        if self.completed_at is not None:
            return 100
        return max(0, min(100, int(self.value * 100 / self.target)))

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.target - self.value)

    def _number(self, value: Decimal) -> str:
        if self.challenge.counts_money:
            return f"{number_format(value, 2, force_grouping=True)} €"
        return number_format(int(value), force_grouping=True)

    @property
    def value_text(self) -> str:
        return _("%(value)s of %(target)s") % {"value": self._number(min(self.value, self.target)),
                                               "target": self._number(self.target)}

    @property
    def goal_text(self) -> str:
        """What the member has to do, in a sentence."""
        challenge, count = self.challenge, int(self.target)
        Goal = Challenge.Goal
        match challenge.goal:
            case Goal.PURCHASES:
                return ngettext("Shop %(count)s time.", "Shop %(count)s times.", count) % {"count": count}
            case Goal.SPEND:
                return _("Spend %(amount)s in total.") % {"amount": self._number(self.target)}
            case Goal.CATEGORY:
                return ngettext("Buy from the range %(category)s once.",
                                "Buy from the range %(category)s %(count)s times.", count) % {
                                    "category": challenge.category, "count": count}
            case Goal.PRODUCT:
                return ngettext("Buy the product %(sku)s once.", "Buy the product %(sku)s %(count)s times.",
                                count) % {"sku": challenge.sku, "count": count}
            case Goal.REFERRAL:
                return ngettext("Invite %(count)s friend who joins.", "Invite %(count)s friends who join.",
                                count) % {"count": count}
            case Goal.SURVEY:
                return ngettext("Answer %(count)s survey.", "Answer %(count)s surveys.", count) % {"count": count}
            case Goal.STREAK:
                return ngettext("Shop in %(count)s week in a row.", "Shop in %(count)s weeks in a row.",
                                count) % {"count": count}
        return ""

    @property
    def reward_texts(self) -> list[str]:
        challenge, texts = self.challenge, []
        if challenge.reward_points:
            texts.append(ngettext("%(points)s bonus point", "%(points)s bonus points", challenge.reward_points)
                         % {"points": number_format(challenge.reward_points, force_grouping=True)})
        if challenge.reward_id is not None:
            texts.append(_("a voucher: %(reward)s") % {"reward": challenge.reward.name})
        if challenge.badge_id is not None:
            texts.append(_("the badge “%(badge)s”") % {"badge": challenge.badge.name})
        return texts


def _in_audience(challenges: list[Challenge], member: Member) -> list[Challenge]:
    """Drop the challenges whose segment the member is not in (one query per segmented one)."""
    return [challenge for challenge in challenges
            if challenge.segment_id is None or challenge.segment.members().filter(pk=member.pk).exists()]


def _live_streaks(member: Member, challenge_ids: list[int]) -> dict[int, Decimal]:
    """A streak fades with the weeks without a purchase: recalculated for showing, not stored."""
    if not challenge_ids:
        return {}
    weeks: dict[int, set[date]] = defaultdict(set)
    rows = (ChallengeContribution.objects.filter(member=member, challenge_id__in=challenge_ids, value__gt=0)
            .values_list("challenge_id", "week").distinct())
    for challenge_id, week in rows:
        weeks[challenge_id].add(week)
    return {challenge_id: Decimal(streak_length(weeks[challenge_id])) for challenge_id in challenge_ids}


def member_challenges(member: Member, *,
                      now: datetime | None = None) -> tuple[list[ChallengeCard], list[ChallengeCard]]:
    """(running, completed): the challenges running now that the member may take part in, most
    advanced first, and every challenge the member completed, newest first."""
    now = now or timezone.now()
    progress = {row.challenge_id: row for row in ChallengeProgress.objects.filter(member=member)
                .select_related("challenge", "challenge__badge", "challenge__reward")}
    running = _in_audience(list(Challenge.objects.running(now).select_related("badge", "reward", "segment")), member)
    streaks = _live_streaks(member, [c.pk for c in running if c.goal == Challenge.Goal.STREAK
                                     and c.pk in progress and progress[c.pk].completed_at is None])
    cards = []
    for challenge in running:
        row = progress.get(challenge.pk)
        if row is not None and row.completed_at is not None:
            continue
        value = streaks.get(challenge.pk, row.value if row else Decimal(0))
        cards.append(ChallengeCard(challenge=challenge, value=value, completed_at=None, rewarded=False))
    cards.sort(key=lambda card: (-card.percent, card.challenge.ends_at or datetime.max.replace(tzinfo=now.tzinfo)))
    completed = sorted(
        (ChallengeCard(challenge=row.challenge, value=row.value, completed_at=row.completed_at, rewarded=row.rewarded)
         for row in progress.values() if row.completed_at is not None),
        key=lambda card: card.completed_at, reverse=True)
    return cards, completed


def member_badges(member: Member) -> list[MemberBadge]:
    return list(MemberBadge.objects.filter(member=member).select_related("badge").order_by("-awarded_at", "-id"))


def member_streak_weeks(member: Member) -> int:
    return member_streak(member.pk)


def challenges_with_counts() -> QuerySet[Challenge]:
    """The console's list: each challenge with its participants and completions (one query)."""
    return Challenge.objects.select_related("badge", "reward", "segment").annotate(
        participants=Count("progress"),
        completions=Count("progress", filter=Q(progress__completed_at__isnull=False)),
    )
