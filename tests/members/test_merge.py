from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from members.errors import InvalidMerge
from members.merge import member_merge
from members.models import ConsentRecord, Member, MemberMerge, TierHistory
from members.services import consent_record
from rewards import ledger as services
from rewards.figures import qualifying_points
from rewards.models import PointEntry, Purchase
from rewards.purchases import purchase_record, purchase_release_pending
from rewards.returns import purchase_return
from rewards.tiers import tier_end_grants, tier_override
from tests import factories


def test_merge_moves_balance_as_a_pair_of_entries_and_repoints_history(member, partner, base_rule, tiers):
    duplicate = factories.enrolled_member()
    purchase_record(member_id=member.pk, partner=partner, order_reference="S-1", amount=Decimal("300"))
    purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D-1", amount=Decimal("250"))
    consent_record(member=duplicate, purpose=ConsentRecord.Purpose.SMS, granted=True, source="staff")

    outcome = member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk, reason="doppelt")
    member.refresh_from_db()
    duplicate.refresh_from_db()

    assert member.points_balance == 550
    assert duplicate.points_balance == 0
    transfers = PointEntry.objects.filter(kind=PointEntry.Kind.TRANSFER).order_by("points")
    assert [(entry.member_id, entry.points) for entry in transfers] == [(duplicate.pk, -250), (member.pk, 250)]
    for someone in (member, duplicate):
        assert PointEntry.objects.filter(member=someone).aggregate(s=Sum("points"))["s"] == someone.points_balance
    assert Purchase.objects.get(order_reference="D-1").member == member
    assert ConsentRecord.objects.filter(member=member, purpose=ConsentRecord.Purpose.SMS).exists()
    assert (duplicate.status, duplicate.merged_into) == (Member.Status.MERGED, member)
    assert MemberMerge.objects.get(duplicate=duplicate).points_moved == 250 == outcome.merge.points_moved
    # The duplicate's earn entries stay where they were written, and still count for the tier:
    assert PointEntry.objects.filter(member=duplicate, kind=PointEntry.Kind.EARN).count() == 1
    assert member.tier == tiers[1]  # 300 + 250 qualifying points


def test_merge_refuses_itself_and_a_second_merge(member):
    duplicate = factories.enrolled_member()
    with pytest.raises(InvalidMerge):
        member_merge(survivor_id=member.pk, duplicate_id=member.pk)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    with pytest.raises(InvalidMerge):
        member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    other = factories.enrolled_member()
    with pytest.raises(InvalidMerge):
        member_merge(survivor_id=duplicate.pk, duplicate_id=other.pk)


def test_merge_keeps_the_duplicates_portal_login(member):
    user = factories.UserFactory()
    duplicate = factories.enrolled_member()
    Member.objects.filter(pk=duplicate.pk).update(user=user)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    member.refresh_from_db()
    assert member.user == user


def test_chained_merges_keep_every_duplicates_qualifying_points(member, partner, base_rule, tiers):
    """Regression: after A into B and then B into C, A's points no longer counted for C."""
    first = factories.enrolled_member()
    second = factories.enrolled_member()
    purchase_record(member_id=first.pk, partner=partner, order_reference="A", amount=Decimal("400"))
    purchase_record(member_id=second.pk, partner=partner, order_reference="B", amount=Decimal("100"))
    member_merge(survivor_id=second.pk, duplicate_id=first.pk)
    assert qualifying_points(second.pk) == 500
    member_merge(survivor_id=member.pk, duplicate_id=second.pk)
    member.refresh_from_db()
    assert qualifying_points(member.pk) == 500
    assert member.tier == tiers[1]
    assert set(member.merged_members.values_list("pk", flat=True)) == {first.pk, second.pk}
    # The merge records keep who went into whom.
    assert MemberMerge.objects.get(duplicate=first).survivor_id == second.pk
    assert member.points_balance == 500


def test_merge_moves_pending_points_and_purchase_statistics(member, partner, base_rule, tiers, settings):
    settings.LOYALTY_RETURN_WINDOW_DAYS = 14
    duplicate = factories.enrolled_member()
    purchase = purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D",
                               amount=Decimal("80")).purchase
    outcome = member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    member.refresh_from_db()
    duplicate.refresh_from_db()
    assert (member.points_pending, duplicate.points_pending, outcome.merge.pending_moved) == (80, 0, 80)
    assert (member.purchases_12m, member.lifetime_spend) == (1, Decimal("80"))
    # The pending purchase is now the survivor's: a return inside the window lowers its pending.
    purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("30"))
    member.refresh_from_db()
    assert (member.points_pending, member.points_balance) == (50, 0)


def test_merging_an_empty_duplicate_posts_no_transfer(member):
    duplicate = factories.enrolled_member()
    outcome = member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    assert outcome.merge.points_moved == 0
    assert not PointEntry.objects.exists()


def _merge_while_waiting_for_the_lock(monkeypatch, survivor, duplicate):
    """Simulate a merge that commits after a service read the purchase's member and before it
    got that member's lock: the first `member_lock` runs the merge first."""
    real_lock = services.member_lock
    merged = []

    def lock(member_id: int):
        if not merged:
            merged.append(member_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk))
        return real_lock(member_id)

    monkeypatch.setattr(services, "member_lock", lock)
    return merged


def test_a_return_racing_a_merge_takes_the_points_from_the_survivor(member, partner, base_rule, monkeypatch):
    """Regression: the return locked the duplicate (the purchase's owner when it looked), found
    its balance at 0 and recorded the points as a shortfall; the survivor kept them."""
    duplicate = factories.enrolled_member()
    purchase = purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D",
                               amount=Decimal("100")).purchase
    merged = _merge_while_waiting_for_the_lock(monkeypatch, member, duplicate)
    back = purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("100"))
    assert merged
    assert (back.points_reversed, back.shortfall_points) == (100, 0)
    member.refresh_from_db()
    assert member.points_balance == 0
    assert PointEntry.objects.get(kind=PointEntry.Kind.REVERSAL).member_id == member.pk


def test_a_release_racing_a_merge_credits_the_survivor(member, partner, base_rule, monkeypatch, settings):
    """Regression: the release lowered the duplicate's pending (already moved: a CHECK error)
    and would have credited the merged duplicate."""
    settings.LOYALTY_RETURN_WINDOW_DAYS = 14
    duplicate = factories.enrolled_member()
    purchase = purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D",
                               amount=Decimal("100")).purchase
    Purchase.objects.filter(pk=purchase.pk).update(available_at=timezone.now() - timedelta(seconds=1))
    merged = _merge_while_waiting_for_the_lock(monkeypatch, member, duplicate)
    entry = purchase_release_pending(purchase_id=purchase.pk)
    assert merged
    assert entry.member_id == member.pk
    member.refresh_from_db()
    assert (member.points_balance, member.points_pending) == (100, 0)


def test_the_merged_person_keeps_the_better_tier_of_the_two_cards(member, tiers):
    """Regression: a Gold duplicate merged into a Basis survivor left the person on Basis (a
    downgrade outside the review), and the change was logged as "earned", not "merge"."""
    duplicate = factories.enrolled_member()
    tier_override(member_id=duplicate.pk, tier=tiers[2], reason="Vorjahr", staff_user=None)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    member.refresh_from_db()
    assert (member.tier, member.tier_granted_until) == (tiers[2], None)
    change = member.tier_history.first()
    assert (change.cause, change.to_tier) == (TierHistory.Cause.MERGE, tiers[2])


def test_a_granted_tier_comes_over_as_a_grant_and_ends_when_it_would_have(member, partner, base_rule, tiers):
    duplicate = factories.enrolled_member()
    purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D", amount=Decimal("600"))  # Silber
    until = timezone.localdate() + timedelta(days=20)
    tier_override(member_id=duplicate.pk, tier=tiers[3], reason="VIP", staff_user=None, until=until)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    member.refresh_from_db()
    assert (member.tier, member.tier_granted_until) == (tiers[3], until)
    assert [change.cause for change in member.tier_history.all()[:2]] == [TierHistory.Cause.GRANT,
                                                                         TierHistory.Cause.MERGE]
    assert tier_end_grants(today=until + timedelta(days=1)) == 1
    member.refresh_from_db()
    assert member.tier == tiers[1]  # what the duplicate held (and the points earn) before the grant


def test_a_merge_that_lifts_the_survivor_by_points_is_logged_as_a_merge(member, partner, base_rule, tiers):
    duplicate = factories.enrolled_member()
    purchase_record(member_id=member.pk, partner=partner, order_reference="S", amount=Decimal("300"))
    purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D", amount=Decimal("300"))
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    member.refresh_from_db()
    assert member.tier == tiers[1]
    change = member.tier_history.first()
    assert (change.cause, change.qualifying_points) == (TierHistory.Cause.MERGE, 600)


def test_partial_returns_in_another_currency_take_back_exactly_the_spend_they_added(member, partner, base_rule):
    """Regression: each return was converted to EUR and rounded on its own, so three returns of
    0.11 CHF took 0.36 EUR off a purchase that had added 0.35 EUR (0.33 × 1.06)."""
    purchase = purchase_record(member_id=member.pk, partner=partner, order_reference="CHF", amount=Decimal("0.33"),
                               currency="CHF").purchase
    member.refresh_from_db()
    assert member.lifetime_spend == Decimal("0.35")
    for index in range(3):
        purchase_return(purchase_id=purchase.pk, reference=f"R{index}", amount=Decimal("0.11"))
    member.refresh_from_db()
    assert (member.lifetime_spend, member.spend_12m) == (Decimal("0"), Decimal("0"))
