"""The challenge engine: events become contributions, contributions become progress, progress
that reaches the target completes the challenge and gives its reward, once.

- Contributions. Each event a challenge counts adds a `ChallengeContribution` keyed by the
  event's stable key ("purchase:123"); the key is unique per (challenge, member), so a replayed
  or duplicated event adds nothing (INSERT … ON CONFLICT DO NOTHING).
- Progress is recalculated from the contributions (their sum; for a streak, the streak of the
  weeks they fall in, engagement.streaks), never incremented: a replay cannot count twice and
  a return simply lowers its purchase's contribution.
- Completion. Lock order: the members (rewards.ledger.members_lock, primary-key order, as every
  points path), then their progress rows (primary-key order). A locked row without
  `completed_at` that reaches the target is completed and rewarded in the same transaction:
  points through rewards.ledger (a BONUS entry whose (source, reference) is unique per challenge
  and member, a second guard), a voucher through rewards.vouchers, the badge as a MemberBadge
  (unique per member and badge). Two purchases of one member at once: the second waits for the
  first's lock and finds the row completed.
- Returns (the rule). A return within the return window (engagement.active.return_window)
  lowers its purchase's contribution to what is left of the purchase, and the progress with it.
  A reward once given stays given: points, voucher and badge are never taken back (they may be
  spent already), and a completed challenge stays completed (it is not rewarded again if the
  progress climbs back). Only a challenge not yet completed can lose progress that matters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from core.errors import LoyaltyError
from core.events import publish
from core.stored_texts import both_languages, stored_text
from rewards.earning import to_eur
from rewards.ledger import members_lock, points_credit
from rewards.models import PointEntry, Purchase, Redemption
from rewards.vouchers import redemption_issue

from .events import BadgeAwarded, ChallengeCompleted
from .models import Challenge, ChallengeContribution, ChallengeProgress, MemberBadge
from .streaks import streak_length

Goal = Challenge.Goal
PURCHASE_GOALS = frozenset({Goal.PURCHASES, Goal.SPEND, Goal.CATEGORY, Goal.PRODUCT, Goal.STREAK})
POINTS_SOURCE = "challenge"
ONE = Decimal(1)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Step:
    """One event's contribution to one challenge of one member."""

    challenge: Challenge
    member_id: int
    source_key: str
    value: Decimal
    week: date | None = None


def reward_reference(challenge_id: int, member_id: int) -> str:
    return f"{challenge_id}:{member_id}"


# --- What a purchase is worth to a challenge -----------------------------------------------------

def purchase_value(challenge: Challenge, *, amount_eur: Decimal, categories: Iterable[str],
                   skus: Iterable[str]) -> Decimal:
    """The contribution of a purchase (of what is left of it after returns) to `challenge`."""
    if amount_eur <= 0:
        return ZERO
    match challenge.goal:
        case Goal.PURCHASES | Goal.STREAK:
            return ONE
        case Goal.SPEND:
            return amount_eur
        case Goal.CATEGORY:
            return ONE if challenge.category in set(categories) else ZERO
        case Goal.PRODUCT:
            return ONE if challenge.sku in set(skus) else ZERO
    return ZERO


def value_after_returns(challenge: Challenge, purchase: Purchase) -> Decimal:
    """`purchase_value` of what was not returned (the purchase read with its lines)."""
    kept = [line for line in purchase.lines.all() if line.returned_amount < line.amount]
    left = to_eur(purchase.amount, purchase.currency) - to_eur(purchase.returned_amount, purchase.currency)
    return purchase_value(challenge, amount_eur=left, categories=(line.category for line in kept),
                          skus=(line.sku for line in kept))


# --- Recording contributions ---------------------------------------------------------------------

def in_audience(steps: Sequence[Step]) -> list[Step]:
    """The steps of members in their challenge's segment (one query per segmented challenge)."""
    allowed: dict[int, set[int]] = {}
    for challenge in {step.challenge.pk: step.challenge for step in steps}.values():
        if challenge.segment_id is not None:
            member_ids = {step.member_id for step in steps if step.challenge.pk == challenge.pk}
            allowed[challenge.pk] = set(challenge.segment.members().filter(pk__in=member_ids)
                                        .values_list("pk", flat=True))
    return [step for step in steps
            if step.challenge.segment_id is None or step.member_id in allowed[step.challenge.pk]]


@transaction.atomic
def contributions_record(*, steps: Sequence[Step]) -> list[ChallengeProgress]:
    """Record the steps (a step already recorded, by its key, is skipped), then recalculate the
    progress of the members concerned and complete what reached its target. Returns the progress
    rows that changed or completed."""
    steps = [step for step in in_audience(steps) if step.value > 0]
    if not steps:
        return []
    now = timezone.now()
    ChallengeContribution.objects.bulk_create(
        [ChallengeContribution(challenge_id=step.challenge.pk, member_id=step.member_id,
                               source_key=step.source_key, value=step.value, week=step.week, created_at=now)
         for step in steps],
        ignore_conflicts=True)
    challenges = {step.challenge.pk: step.challenge for step in steps}
    return progress_refresh(challenges=challenges, pairs={(step.challenge.pk, step.member_id) for step in steps})


@transaction.atomic
def contributions_revalue(*, purchase_ids: Sequence[int], challenges: Sequence[Challenge]) -> list[ChallengeProgress]:
    """A return: each contribution of these purchases becomes what is left of its purchase."""
    by_id = {challenge.pk: challenge for challenge in challenges}
    keys = [f"purchase:{purchase_id}" for purchase_id in purchase_ids]
    contributions = list(ChallengeContribution.objects.filter(source_key__in=keys, challenge_id__in=by_id))
    if not contributions:
        return []
    purchases = Purchase.objects.prefetch_related("lines").in_bulk(purchase_ids)
    changed = []
    for contribution in contributions:
        purchase = purchases[int(contribution.source_key.split(":", 1)[1])]
        value = value_after_returns(by_id[contribution.challenge_id], purchase)
        if value != contribution.value:
            contribution.value = value
            changed.append(contribution)
    ChallengeContribution.objects.bulk_update(changed, ["value"])
    return progress_refresh(challenges=by_id, pairs={(c.challenge_id, c.member_id) for c in changed})


# --- Progress and completion ---------------------------------------------------------------------

def _pairs_filter(pairs: set[tuple[int, int]]) -> Q:
    per_challenge: dict[int, set[int]] = defaultdict(set)
    for challenge_id, member_id in pairs:
        per_challenge[challenge_id].add(member_id)
    return reduce(or_, (Q(challenge_id=challenge_id, member_id__in=member_ids)
                        for challenge_id, member_ids in sorted(per_challenge.items())))


def _values(challenges: dict[int, Challenge], pairs: set[tuple[int, int]]) -> dict[tuple[int, int], Decimal]:
    """The progress each pair's contributions add up to (read after the locks)."""
    where = _pairs_filter(pairs)
    values: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    streak_ids = [pk for pk, challenge in challenges.items() if challenge.goal == Goal.STREAK]
    sums = (ChallengeContribution.objects.filter(where).exclude(challenge_id__in=streak_ids)
            .values_list("challenge_id", "member_id").annotate(total=Sum("value")))
    for challenge_id, member_id, total in sums:
        values[(challenge_id, member_id)] = total
    if streak_ids:
        weeks: dict[tuple[int, int], set[date]] = defaultdict(set)
        rows = (ChallengeContribution.objects.filter(where, challenge_id__in=streak_ids, value__gt=0)
                .values_list("challenge_id", "member_id", "week").distinct())
        for challenge_id, member_id, week in rows:
            weeks[(challenge_id, member_id)].add(week)
        for pair, counted in weeks.items():
            values[pair] = Decimal(streak_length(counted))
    return values


def progress_refresh(*, challenges: dict[int, Challenge], pairs: set[tuple[int, int]]) -> list[ChallengeProgress]:
    """Recalculate and save the progress of (challenge id, member id) pairs under their locks;
    complete and reward those that reached the target. The caller runs in a transaction."""
    if not pairs:
        return []
    members_lock(sorted({member_id for _challenge, member_id in pairs}))
    ChallengeProgress.objects.bulk_create(
        [ChallengeProgress(challenge_id=challenge_id, member_id=member_id) for challenge_id, member_id in pairs],
        ignore_conflicts=True)
    rows = list(ChallengeProgress.objects.select_for_update().filter(_pairs_filter(pairs)).order_by("pk"))
    values = _values(challenges, pairs)
    now = timezone.now()
    touched, completed = [], []
    for row in rows:
        value = values.get((row.challenge_id, row.member_id), ZERO)
        challenge = challenges[row.challenge_id]
        row.challenge = challenge
        reached = row.completed_at is None and value >= challenge.target
        if value != row.value or reached:
            row.value = value
            row.updated_at = now
            if reached:
                row.completed_at = now
                completed.append(row)
            touched.append(row)
    ChallengeProgress.objects.bulk_update(touched, ["value", "completed_at", "updated_at"])
    for row in completed:
        _reward(row)
    return touched


def _reward(progress: ChallengeProgress) -> None:
    """Give the challenge's reward for a row just completed under its lock (so exactly once).
    A voucher that cannot be issued (sold out, reward switched off) does not undo the purchase
    that completed the challenge: the row notes why, staff can give it by hand."""
    challenge = progress.challenge
    member_id = progress.member_id
    notes = []
    if challenge.reward_points:
        points_credit(member_id=member_id, points=challenge.reward_points, kind=PointEntry.Kind.BONUS,
                      reason=stored_text("challenge-completed", name=both_languages(challenge, "name")),
                      source=POINTS_SOURCE, reference=reward_reference(challenge.pk, member_id))
        progress.points_awarded = challenge.reward_points
    if challenge.reward_id is not None:
        try:
            with transaction.atomic():
                progress.redemption = redemption_issue(member_id=member_id, reward_id=challenge.reward_id,
                                                       source=Redemption.Source.CHALLENGE)
        except LoyaltyError as error:
            notes.append(str(error))
    new_badge = challenge.badge_id is not None and _badge_award(member_id, challenge)
    progress.rewarded = True
    progress.reward_note = "; ".join(notes)[:255]
    ChallengeProgress.objects.filter(pk=progress.pk).update(
        rewarded=True, points_awarded=progress.points_awarded, redemption=progress.redemption,
        reward_note=progress.reward_note)
    publish(ChallengeCompleted(member_id=member_id, challenge_id=challenge.pk, points=progress.points_awarded,
                               redemption_id=progress.redemption.pk if progress.redemption else None,
                               badge_id=challenge.badge_id))
    if new_badge:
        publish(BadgeAwarded(member_id=member_id, badge_id=challenge.badge_id, challenge_id=challenge.pk))


def _badge_award(member_id: int, challenge: Challenge) -> bool:
    """True when the member did not have the badge yet (one per member, whatever earned it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO engagement_memberbadge (member_id, badge_id, challenge_id, awarded_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            [member_id, challenge.badge_id, challenge.pk, timezone.now()])
        return cursor.fetchone() is not None


@transaction.atomic
def badge_award(*, member_id: int, badge_id: int) -> bool:
    """Staff or the demo give a badge by hand. True when the member did not have it yet."""
    members_lock([member_id])
    _created, created = MemberBadge.objects.get_or_create(member_id=member_id, badge_id=badge_id)
    if created:
        publish(BadgeAwarded(member_id=member_id, badge_id=badge_id))
    return created


# --- Merges ----------------------------------------------------------------------------------------

def member_engagement_merge(*, survivor_id: int, duplicate_id: int) -> None:
    """A merge (members.merge, in its transaction, both members locked): the duplicate's badges,
    contributions and progress become the survivor's. A challenge either of them completed stays
    completed for the survivor (so it is not rewarded a second time); the progress is then
    recalculated from the combined contributions, which may complete a challenge neither had."""
    held = set(MemberBadge.objects.filter(member_id=survivor_id).values_list("badge_id", flat=True))
    MemberBadge.objects.filter(member_id=duplicate_id).exclude(badge_id__in=held).update(member_id=survivor_id)
    MemberBadge.objects.filter(member_id=duplicate_id).delete()

    duplicates = ChallengeContribution.objects.filter(member_id=duplicate_id)
    pairs = {(challenge_id, survivor_id) for challenge_id in duplicates.values_list("challenge_id", flat=True)}
    counted_for_both = ChallengeContribution.objects.filter(
        member_id=survivor_id, challenge_id=OuterRef("challenge_id"), source_key=OuterRef("source_key"))
    duplicates.filter(Exists(counted_for_both)).delete()  # the same event counted for both: once is enough
    duplicates.update(member_id=survivor_id)

    survivor_rows = {row.challenge_id: row for row in ChallengeProgress.objects.filter(member_id=survivor_id)}
    for row in ChallengeProgress.objects.filter(member_id=duplicate_id):
        pairs.add((row.challenge_id, survivor_id))
        kept = survivor_rows.get(row.challenge_id)
        if kept is None:
            ChallengeProgress.objects.filter(pk=row.pk).update(member_id=survivor_id)
            continue
        if kept.completed_at is None and row.completed_at is not None:
            ChallengeProgress.objects.filter(pk=kept.pk).update(
                completed_at=row.completed_at, rewarded=row.rewarded, points_awarded=row.points_awarded,
                redemption=row.redemption_id, reward_note=row.reward_note)
        ChallengeProgress.objects.filter(pk=row.pk).delete()
    if pairs:
        challenges = Challenge.objects.select_related("reward", "badge").in_bulk({pk for pk, _member in pairs})
        progress_refresh(challenges=challenges, pairs=pairs)
