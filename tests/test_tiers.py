"""Tiers: up at once when earned, down only at the yearly review and one level at a time,
granted tiers fall back when their period ends, staff overrides need a reason."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty_site.errors import ReasonRequired
from members.models import TierHistory
from members.selectors import tier_progress
from members.services import tier_end_grants, tier_override, tier_review_all, tier_review_member
from rewards.services import points_debit, purchase_record, purchase_return


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
