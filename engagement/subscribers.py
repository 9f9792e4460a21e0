"""What engagement does when something happens (see core/events.py); registered in
EngagementConfig.ready(). No query at all when no challenge waits for the event: the active
challenges come from the per-process copy (engagement.active)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from core.events import subscribe
from feedback.events import SurveyAnswered
from members.events import MembersMerged
from members.gdpr import export_section
from members.models import Member
from referrals.events import ReferralRewarded
from rewards.earning import to_eur
from rewards.events import PurchaseRecorded, PurchaseReturned

from .active import active_challenges, return_window
from .engine import (
    PURCHASE_GOALS,
    Goal,
    Step,
    contributions_record,
    contributions_revalue,
    member_engagement_merge,
    purchase_value,
)
from .models import Challenge, ChallengeProgress, MemberBadge
from .streaks import week_of


def _waiting(goals: frozenset[str] | set[str]) -> list[Challenge]:
    return [challenge for challenge in active_challenges() if challenge.goal in goals]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value) if value else timezone.now()


@subscribe(PurchaseRecorded)
def count_purchases(events: Sequence[PurchaseRecorded]) -> None:
    challenges = _waiting(PURCHASE_GOALS)
    if not challenges:
        return
    steps = []
    for event in events:
        if event.member_id is None:
            continue
        at = _when(event.occurred_at)
        amount_eur = to_eur(Decimal(event.amount), event.currency)
        for challenge in challenges:
            if not challenge.runs_at(at):
                continue
            value = purchase_value(challenge, amount_eur=amount_eur, categories=event.categories, skus=event.skus)
            steps.append(Step(challenge=challenge, member_id=event.member_id, source_key=event.key, value=value,
                              week=week_of(at) if challenge.goal == Goal.STREAK else None))
    if steps:
        contributions_record(steps=steps)


@subscribe(PurchaseReturned)
def undo_returned_purchases(events: Sequence[PurchaseReturned]) -> None:
    """A return within the return window lowers its purchase's contribution (engine's rule)."""
    challenges = _waiting(PURCHASE_GOALS)
    if not challenges:
        return
    oldest = timezone.now() - return_window()
    purchase_ids = [event.purchase_id for event in events if _when(event.occurred_at) >= oldest]
    if purchase_ids:
        contributions_revalue(purchase_ids=purchase_ids, challenges=challenges)


@subscribe(ReferralRewarded)
def count_referrals(events: Sequence[ReferralRewarded]) -> None:
    challenges = _waiting({Goal.REFERRAL})
    if not challenges:
        return
    now = timezone.now()
    contributions_record(steps=[
        Step(challenge=challenge, member_id=event.member_id, source_key=event.key, value=Decimal(1))
        for event in events if event.member_id is not None
        for challenge in challenges if challenge.runs_at(now)])


@subscribe(SurveyAnswered)
def count_survey_answers(events: Sequence[SurveyAnswered]) -> None:
    challenges = _waiting({Goal.SURVEY})
    if not challenges:
        return
    now = timezone.now()
    contributions_record(steps=[
        Step(challenge=challenge, member_id=event.member_id, source_key=event.key, value=Decimal(1))
        for event in events if event.member_id is not None  # anonymous answers count for no one
        for challenge in challenges
        if challenge.runs_at(now) and challenge.survey_id in (None, event.survey_id)])


@subscribe(MembersMerged)
def engagement_follows_the_merge(events: Sequence[MembersMerged]) -> None:
    for event in events:
        member_engagement_merge(survivor_id=event.member_id, duplicate_id=event.duplicate_id)


@export_section("challenges")
def challenges_of_the_export(member: Member, people: list[int]) -> dict:
    """The member's data export (members.gdpr): progress in challenges and badges."""
    progress = ChallengeProgress.objects.filter(member_id__in=people).select_related("challenge").order_by("pk")
    badges = MemberBadge.objects.filter(member_id__in=people).select_related("badge").order_by("pk")
    return {
        "progress": [{"challenge": row.challenge.name_de, "value": str(row.value),
                      "completed_at": row.completed_at.isoformat() if row.completed_at else None,
                      "points_awarded": row.points_awarded} for row in progress],
        "badges": [{"badge": award.badge.name_de, "awarded_at": award.awarded_at.isoformat()} for award in badges],
    }
