"""Tiers: up at once when earned, down only at the yearly review and one level at a time,
granted tiers fall back when their period ends, staff overrides need a reason."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ReasonRequired
from members.models import Member, TierHistory
from rewards.ledger import points_debit
from rewards.purchases import purchase_record
from rewards.returns import purchase_return
from rewards.selectors import tier_progress
from rewards.tiers import tier_end_grants, tier_override, tier_review_all, tier_review_member


def earn(member, partner, amount, reference, days_ago=0):
    at = timezone.now() - timedelta(days=days_ago)
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=Decimal(amount),
                           occurred_at=at, booked_at=at).purchase


def test_enrolment_starts_on_the_entry_tier_with_history(member, tiers):
    assert member.tier == tiers[0]
    assert member.tier_history.get().cause == TierHistory.Cause.ENROLMENT


def test_upgrade_happens_at_once_and_can_skip_levels(member, partner, base_rule, tiers):
    earn(member, partner, "499", "A")
    member.refresh_from_db()
    assert member.tier == tiers[0]
    earn(member, partner, "1", "B")  # 500 qualifying points: Silber
    member.refresh_from_db()
    assert member.tier == tiers[1]
    earn(member, partner, "5000", "C")  # 5500: straight to Platin
    member.refresh_from_db()
    assert member.tier == tiers[3]
    change = member.tier_history.first()
    assert (change.cause, change.from_tier, change.qualifying_points) == (TierHistory.Cause.EARNED, tiers[1], 5500)


def test_spending_points_does_not_cost_the_tier(member, partner, base_rule, tiers):
    earn(member, partner, "600", "A")
    points_debit(member_id=member.pk, points=600, reason="Prämie")
    member.refresh_from_db()
    assert member.tier == tiers[1]
    assert tier_progress(member).qualifying_points == 600


def test_gold_multiplier_applies_after_the_upgrade(member, partner, base_rule, tiers):
    earn(member, partner, "2000", "A")  # Gold
    purchase = earn(member, partner, "42.50", "B")
    # 1 point per EUR = 42, Gold ×1.25: 42.50 × 0.25 = 10.625 → +10
    assert purchase.points_earned == 52
    assert [(part.kind, part.points) for part in purchase.breakdown.all()] == [("base", 42), ("tier", 10)]


def test_yearly_review_downgrades_one_level_only(member, partner, base_rule, tiers):
    earn(member, partner, "6000", "OLD", days_ago=400)  # nothing in the last 12 months
    tier_override(member_id=member.pk, tier=tiers[3], reason="Platin im Vorjahr", staff_user=None)
    tier_review_member(member_id=member.pk)
    member.refresh_from_db()
    assert member.tier == tiers[2]
    assert member.tier_history.first().cause == TierHistory.Cause.REVIEW
    assert tier_review_all() >= 1
    member.refresh_from_db()
    assert member.tier == tiers[1]


def test_review_keeps_a_member_who_still_qualifies(member, partner, base_rule, tiers):
    earn(member, partner, "2100", "A")
    tier_review_member(member_id=member.pk)
    member.refresh_from_db()
    assert member.tier == tiers[2]


def test_returns_reduce_qualifying_points(member, partner, base_rule, tiers):
    purchase = earn(member, partner, "2000", "A")
    purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("1000"))
    member.refresh_from_db()
    assert member.tier == tiers[2]  # no downgrade between reviews
    tier_review_member(member_id=member.pk)
    member.refresh_from_db()
    assert member.tier == tiers[1]  # 1000 qualifying points now


def test_staff_override_needs_a_reason_and_is_recorded(member, tiers):
    with pytest.raises(ReasonRequired):
        tier_override(member_id=member.pk, tier=tiers[2], reason="", staff_user=None)
    tier_override(member_id=member.pk, tier=tiers[2], reason="Beschwerde kulant gelöst", staff_user=None)
    member.refresh_from_db()
    assert member.tier == tiers[2]
    change = member.tier_history.first()
    assert (change.cause, change.reason) == (TierHistory.Cause.STAFF, "Beschwerde kulant gelöst")


def test_granted_tier_survives_the_review_and_falls_back_when_the_period_ends(member, partner, base_rule, tiers):
    earn(member, partner, "700", "A")  # earned Silber
    today = timezone.localdate()
    tier_override(member_id=member.pk, tier=tiers[3], reason="VIP-Mitgliedschaft", staff_user=None,
                  until=today + timedelta(days=30))
    tier_review_member(member_id=member.pk, today=today)
    member.refresh_from_db()
    assert member.tier == tiers[3]
    assert tier_end_grants(today=today) == 0
    assert tier_end_grants(today=today + timedelta(days=31)) == 1
    member.refresh_from_db()
    assert member.tier == tiers[1]
    assert member.tier_granted_until is None
    assert member.tier_history.first().cause == TierHistory.Cause.GRANT_ENDED


def test_tier_progress_shows_the_gap_to_the_next_tier(member, partner, base_rule, tiers):
    earn(member, partner, "1250", "A")
    member.refresh_from_db()
    progress = tier_progress(member)
    assert (progress.current, progress.next, progress.points_to_next) == (tiers[1], tiers[2], 750)
    assert progress.percent == 50  # (1250 - 500) / (2000 - 500)


def test_worked_example_a_tier_year(member, partner, base_rule, tiers):
    """Erika's year on the ladder, with the qualifying points at each step."""
    # 1. 600 EUR eleven months ago: 600 points, Silber at once.
    earn(member, partner, "600", "Y-1", days_ago=330)
    member.refresh_from_db()
    assert (member.tier, tier_progress(member).qualifying_points) == (tiers[1], 600)
    # 2. 1,500 EUR a month later: 2,100, Gold at once (nobody waits for the review to go up).
    earn(member, partner, "1500", "Y-2", days_ago=300)
    member.refresh_from_db()
    assert (member.tier, tier_progress(member).qualifying_points) == (tiers[2], 2100)
    # 3. Staff make her Platin for a complaint: needs a reason, recorded with it.
    tier_override(member_id=member.pk, tier=tiers[3], reason="Reklamation 4711", staff_user=None)
    member.refresh_from_db()
    assert member.tier == tiers[3]
    assert (member.tier_history.first().cause, member.tier_history.first().reason) == (
        TierHistory.Cause.STAFF, "Reklamation 4711")
    # 4. The review a year after step 1: 600 points have left the window, 1,500 are left, which
    #    is Silber, but she goes down one level only: Platin -> Gold.
    review_day = timezone.localdate() + timedelta(days=40)
    tier_review_member(member_id=member.pk, today=review_day)
    member.refresh_from_db()
    assert member.tier == tiers[2]
    assert (member.tier_history.first().cause, member.tier_history.first().qualifying_points) == (
        TierHistory.Cause.REVIEW, 1500)
    # 5. A 60-day Platin grant; the next review leaves a granted tier alone.
    tier_override(member_id=member.pk, tier=tiers[3], reason="VIP-Aktion", staff_user=None,
                  until=review_day + timedelta(days=60))
    tier_review_member(member_id=member.pk, today=review_day + timedelta(days=1))
    member.refresh_from_db()
    assert member.tier == tiers[3]
    # 6. The grant ends 61 days later. Her points have all left the window by then (Basis), but
    #    she falls back to Gold, the tier she held before the grant: only a review lowers it.
    assert tier_end_grants(today=review_day + timedelta(days=61)) == 1
    member.refresh_from_db()
    assert (member.tier, member.tier_granted_until) == (tiers[2], None)
    # 7. The next yearly review: 0 qualifying points, one level down, Silber.
    tier_review_member(member_id=member.pk, today=review_day + timedelta(days=365))
    member.refresh_from_db()
    assert member.tier == tiers[1]
    causes = list(member.tier_history.order_by("created_at", "id").values_list("cause", flat=True))
    assert causes == ["enrolment", "earned", "earned", "staff", "review", "grant", "grant_ended", "review"]


def test_a_grant_ending_never_drops_below_the_tier_held_before_it(member, partner, base_rule, tiers):
    """Regression: the end of a grant set the tier from today's points alone, so a Gold member
    given Platin for a month could land on Basis, three levels down outside any review."""
    earn(member, partner, "2100", "A", days_ago=360)  # Gold, points about to leave the window
    today = timezone.localdate()
    tier_override(member_id=member.pk, tier=tiers[3], reason="Jubiläum", staff_user=None,
                  until=today + timedelta(days=10))
    assert tier_end_grants(today=today + timedelta(days=11)) == 1
    member.refresh_from_db()
    assert member.tier == tiers[2]
    assert member.tier_history.first().cause == TierHistory.Cause.GRANT_ENDED


def test_buying_redeeming_and_returning_does_not_keep_the_tier(member, partner, base_rule, tiers):
    """Regression: the shortfall of a return (points already spent) used to stay qualifying,
    so buy 2,000, redeem 2,000, return everything kept Gold through the review."""
    purchase = earn(member, partner, "2000", "A")
    points_debit(member_id=member.pk, points=2000, reason="Prämie")
    back = purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("2000"))
    assert (back.points_reversed, back.shortfall_points) == (2000, 2000)
    member.refresh_from_db()
    assert tier_progress(member).qualifying_points == 0
    tier_review_member(member_id=member.pk)
    member.refresh_from_db()
    assert member.tier == tiers[1]  # one level down from Gold, as every review
    tier_review_member(member_id=member.pk)
    member.refresh_from_db()
    assert member.tier == tiers[0]


def test_partial_shortfall_counts_only_what_was_taken_back(member, partner, base_rule, tiers):
    purchase = earn(member, partner, "800", "A")
    points_debit(member_id=member.pk, points=700, reason="Prämie")  # 100 left
    back = purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("400"))
    assert (back.points_reversed, back.shortfall_points) == (400, 300)
    assert tier_progress(member).qualifying_points == 400  # 800 earned - 400 returned


def test_review_gives_a_member_without_a_tier_the_tier_earned(member, partner, base_rule, tiers):
    """Regression: a member with no tier (the ladder was set up after they joined) was skipped."""
    earn(member, partner, "600", "A")
    Member.objects.filter(pk=member.pk).update(tier=None)
    tier_review_member(member_id=member.pk)
    member.refresh_from_db()
    assert member.tier == tiers[1]


def test_review_counts_the_points_of_the_review_day_not_of_today(member, partner, base_rule, tiers):
    """Regression: `today` was only used for grants; the points were always counted as of now."""
    earn(member, partner, "2100", "A", days_ago=200)  # Gold
    # A review run for a day half a year ahead: these points have left the 12-month window.
    tier_review_member(member_id=member.pk, today=timezone.localdate() + timedelta(days=180))
    member.refresh_from_db()
    assert member.tier == tiers[1]
