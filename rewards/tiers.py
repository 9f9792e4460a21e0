"""The tier engine: who holds which tier, and why (the Tier and TierHistory models stay in members).

Tier rules (DESIGN.md): an upgrade happens at once when a member earns enough; a downgrade
only at the yearly review and one level at a time; a tier granted for a period falls back to
the earned tier when the period ends; staff can override with a reason; a merge keeps the better
tier of the two cards. Paid and invitation tiers are never reached by points: a membership
(rewards.tier_memberships) holds them, and the member holds the highest of the points tier and
the active memberships. Every change is a `TierHistory` row with its cause, and a `TierChanged`
event published in the same transaction, whatever caused it.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ReasonRequired
from core.events import publish
from members.models import Member, Tier, TierHistory

from .errors import MembershipTierNotOverridable
from .events import TierChanged
from .figures import qualifying_points
from .ledger import member_lock_with_tier
from .rule_cache import tier_ladder

# Causes of a tier held through a membership: not what the member holds on points.
MEMBERSHIP_CAUSES = (TierHistory.Cause.PAID, TierHistory.Cause.INVITATION)


def points_tiers(tiers: list[Tier]) -> list[Tier]:
    return [tier for tier in tiers if tier.kind == Tier.Kind.POINTS]


def higher(*tiers: Tier | None) -> Tier | None:
    """The highest-ranked of the given tiers (None counts as below every tier)."""
    present = [tier for tier in tiers if tier is not None]
    return max(present, key=lambda tier: tier.rank) if present else None


def _tier_for_points(points: int, tiers: list[Tier]) -> Tier | None:
    eligible = [tier for tier in points_tiers(tiers) if tier.threshold_points <= points]
    return max(eligible, key=lambda tier: tier.rank) if eligible else None


def grant_active(member: Member, today: date) -> bool:
    return member.tier_granted_until is not None and member.tier_granted_until >= today


def _publish_change(member: Member, from_tier: Tier | None, to_tier: Tier | None, *, cause: str,
                    partner_id: int | None = None, purchase_id: int | None = None) -> None:
    publish(TierChanged(member_id=member.pk, partner_id=partner_id,
                        from_tier_id=from_tier.pk if from_tier is not None else None,
                        to_tier_id=to_tier.pk if to_tier is not None else None,
                        to_tier_name=to_tier.name if to_tier is not None else "",
                        to_tier_rank=to_tier.rank if to_tier is not None else None,
                        cause=cause, purchase_id=purchase_id))


def change_tier(member: Member, tier: Tier | None, *, cause: str, reason: str = "", points: int | None = None,
                 staff_user: AbstractBaseUser | None = None, partner_id: int | None = None,
                 purchase_id: int | None = None) -> None:
    if tier == member.tier:
        return
    from_tier = member.tier
    TierHistory.objects.create(member=member, from_tier=from_tier, to_tier=tier, cause=cause, reason=reason,
                               qualifying_points=points, created_by=staff_user)
    member.tier = tier
    Member.objects.filter(pk=member.pk).update(tier=tier)
    _publish_change(member, from_tier, tier, cause=cause, partner_id=partner_id, purchase_id=purchase_id)


def tier_may_rise(tier: Tier | None, ladder: list[Tier]) -> bool:
    """Could points lift a holder of `tier` (None: no tier)? Not at the top of the points tiers."""
    current_rank = tier.rank if tier else -1
    return any(candidate.rank > current_rank for candidate in points_tiers(ladder))


def tier_evaluate(*, member: Member, cause: str = TierHistory.Cause.EARNED, partner_id: int | None = None,
                  purchase_id: int | None = None, qualifying: int | None = None) -> None:
    """Upgrade at once if the member now qualifies for a higher tier. The caller holds the lock.
    `qualifying`: the member's qualifying points, when the caller has just counted them (the
    purchase earn's statement does)."""
    tiers = points_tiers(tier_ladder())
    current_rank = member.tier.rank if member.tier else -1
    if not tier_may_rise(member.tier, tiers):
        return  # at the top already: nothing to reach, no need to count
    points = qualifying_points(member.pk) if qualifying is None else qualifying
    target = _tier_for_points(points, tiers)
    if target is not None and target.rank > current_rank:
        change_tier(member, target, cause=cause, points=points, partner_id=partner_id, purchase_id=purchase_id)


@transaction.atomic
def tier_review_member(*, member_id: int, today: date | None = None) -> None:
    """The yearly review for one member: up to what they earned, down at most one level."""
    today = today or timezone.localdate()
    member = member_lock_with_tier(member_id)
    tiers = list(Tier.objects.points_based().order_by("rank"))
    current = member.tier
    if current is not None and current.is_membership:
        return  # held by a membership: its end (tier_memberships) falls back to the tier on points
    points = qualifying_points(member.pk, at=end_of(today))
    target = _tier_for_points(points, tiers)
    if target is None or (current is not None and target.rank == current.rank):
        return
    if current is None or target.rank > current.rank:  # a member without a tier gets the one earned
        change_tier(member, target, cause=TierHistory.Cause.REVIEW, points=points)
    elif not grant_active(member, today):
        one_down = max((tier for tier in tiers if tier.rank < current.rank), key=lambda tier: tier.rank)
        change_tier(member, one_down, cause=TierHistory.Cause.REVIEW, points=points)


def end_of(day: date) -> datetime:
    """The last moment of `day` in the current time zone: the review counts the whole day."""
    return timezone.make_aware(datetime.combine(day, time.max))


def tier_review_all(*, today: date | None = None) -> int:
    """The yearly beat job. Returns the number of members reviewed."""
    reviewed = 0
    for member_id in Member.objects.active().values_list("pk", flat=True).iterator():
        tier_review_member(member_id=member_id, today=today)
        reviewed += 1
    return reviewed


@transaction.atomic
def tier_override(*, member_id: int, tier: Tier, reason: str, staff_user: AbstractBaseUser | None,
                  until: date | None = None) -> Member:
    """Staff set a tier with a reason; with `until` it is a grant for a period. A paid or
    invitation tier is no override: it is held through a membership (rewards.tier_memberships)."""
    if not reason.strip():
        raise ReasonRequired()
    if tier.is_membership:
        raise MembershipTierNotOverridable(tier=tier.name)
    member = member_lock_with_tier(member_id)
    cause = TierHistory.Cause.GRANT if until else TierHistory.Cause.STAFF
    member.tier_granted_until = until
    Member.objects.filter(pk=member.pk).update(tier_granted_until=until)
    if tier == member.tier:
        TierHistory.objects.create(member=member, from_tier=tier, to_tier=tier, cause=cause, reason=reason.strip(),
                                   created_by=staff_user)
        _publish_change(member, tier, tier, cause=cause)  # the tier stays, its grant (or end) changed
    else:
        change_tier(member, tier, cause=cause, reason=reason.strip(), staff_user=staff_user)
    return member


def tier_before_grant(member: Member) -> Tier | None:
    """The tier of the latest change that was not a grant (earned, reviewed, staff, a grant's end)."""
    return tier_held_without_memberships(member, today=None)


def tier_held_without_memberships(member: Member, *, today: date | None) -> Tier | None:
    """The points tier of the member's latest change that no membership caused: what they hold
    without their memberships. A grant counts only while it runs (`today` given and within it)."""
    changes = (member.tier_history.exclude(cause__in=MEMBERSHIP_CAUSES).select_related("to_tier")
               .order_by("-created_at", "-id"))
    for change in changes[:50]:  # a member has a handful of changes; the bound keeps it a bounded read
        if change.to_tier is not None and change.to_tier.is_membership:
            continue  # a fall from one membership tier to another
        if change.cause == TierHistory.Cause.GRANT and (today is None or not grant_active(member, today)):
            continue
        return change.to_tier
    return None


def tier_on_points(member: Member, today: date) -> tuple[Tier | None, int]:
    """The tier the member holds without memberships: the higher of what they held and what
    their qualifying points reach now (upgrades come at once; downgrades only at the review).
    Returns it with the qualifying points."""
    tiers = list(Tier.objects.points_based().order_by("rank"))
    points = qualifying_points(member.pk, at=end_of(today))
    earned = _tier_for_points(points, tiers) or (tiers[0] if tiers else None)
    return higher(earned, tier_held_without_memberships(member, today=today)), points


def active_membership_tier(member: Member, today: date) -> Tier | None:
    from .models import TierMembership

    memberships = TierMembership.objects.active_on(today).filter(member=member).select_related("tier")
    return higher(*(membership.tier for membership in memberships))


def tier_end_grants(*, today: date | None = None) -> int:
    """Daily: members whose granted tier has ended fall back to the tier they earned."""
    today = today or timezone.localdate()
    ended = 0
    for member_id in Member.objects.filter(tier_granted_until__lt=today).values_list("pk", flat=True):
        with transaction.atomic():
            member = member_lock_with_tier(member_id)
            if member.tier_granted_until is None or member.tier_granted_until >= today:
                continue
            member.tier_granted_until = None
            Member.objects.filter(pk=member.pk).update(tier_granted_until=None)
            # Never below the tier held before the grant (tier_on_points): without the grant the
            # member would keep it until the yearly review, and a grant must not cost anybody a
            # tier. A membership running above it keeps its tier.
            earned, points = tier_on_points(member, today)
            target = higher(earned, active_membership_tier(member, today))
            change_tier(member, target, cause=TierHistory.Cause.GRANT_ENDED, points=points)
            ended += 1
    return ended


def tiers_merge(*, survivor: Member, duplicate: Member) -> None:
    """A merge: the person keeps the better tier of the two cards (a merge is no review, so it
    lowers nobody), then qualifies on the combined ledger. A tier the duplicate held only by a
    grant comes over as that grant, ending when it would have; what the duplicate held before
    the grant comes over for good. The caller holds both locks; `duplicate` is as it was before
    the merge (its tier and grant)."""
    reason = _("Merged %(duplicate)s") % {"duplicate": duplicate.customer_number}
    today = timezone.localdate()
    granted = grant_active(duplicate, today)
    # A tier the duplicate holds through a membership is not taken over here: the membership
    # itself moves to the survivor (rewards.subscribers) and lifts the survivor's tier.
    on_membership = duplicate.tier is not None and duplicate.tier.is_membership
    held = tier_before_grant(duplicate) if granted or on_membership else duplicate.tier
    grant_tier = None
    if granted:
        grant_tier = tier_held_without_memberships(duplicate, today=today) if on_membership else duplicate.tier
    steps = [(held, TierHistory.Cause.MERGE), (grant_tier, TierHistory.Cause.GRANT)]
    for tier, cause in steps:
        if tier is None or (survivor.tier is not None and survivor.tier.rank >= tier.rank):
            continue
        if cause == TierHistory.Cause.GRANT:
            survivor.tier_granted_until = duplicate.tier_granted_until
            Member.objects.filter(pk=survivor.pk).update(tier_granted_until=duplicate.tier_granted_until)
        change_tier(survivor, tier, cause=cause, reason=reason)
    tier_evaluate(member=survivor, cause=TierHistory.Cause.MERGE)
