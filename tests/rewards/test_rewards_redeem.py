"""Redeeming points for rewards, cancelling and expiring vouchers, the catalogue and the discount."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from members.errors import MemberNotActive
from members.merge import member_merge
from members.models import Member
from members.services import member_set_status
from rewards.errors import InsufficientPoints, RewardUnavailable, VoucherNotCancellable
from rewards.ledger import points_adjust
from rewards.models import PointEntry, Redemption, Reward
from rewards.selectors import ledger_mismatches
from rewards.vouchers import (
    catalogue_for,
    member_discount_percent,
    redemption_cancel,
    redemption_create,
    redemption_issue,
    redemptions_expire_due,
    reward_stock_change,
    voucher_consume,
)
from tests import factories


def give(member, points):
    points_adjust(member_id=member.pk, points=points, reason="Test", staff_user=None)
    member.refresh_from_db()


def balance(member) -> int:
    member.refresh_from_db()
    return member.points_balance


# --- Redeeming ---------------------------------------------------------------------------------

def test_redeeming_takes_points_and_stock_and_issues_a_voucher(member):
    give(member, 300)
    reward = factories.RewardFactory(points_cost=120, stock=5, voucher_valid_days=30)
    voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)
    reward.refresh_from_db()
    assert (balance(member), reward.stock) == (180, 4)
    assert (voucher.status, voucher.points, voucher.source) == (Redemption.Status.ISSUED, 120, "catalogue")
    assert voucher.expires_at == voucher.issued_at + timedelta(days=30)
    entry = PointEntry.objects.get(member=member, kind=PointEntry.Kind.REDEEM)
    assert (entry.points, entry.source, entry.reference) == (-120, "redemption", voucher.code)
    assert ledger_mismatches() == []


def test_an_unlimited_reward_keeps_no_stock(member):
    give(member, 300)
    reward = factories.RewardFactory(points_cost=100, stock=None)
    redemption_create(member_id=member.pk, reward_id=reward.pk)
    reward.refresh_from_db()
    assert reward.stock is None


def test_redeeming_without_enough_points_changes_nothing(member):
    give(member, 99)
    reward = factories.RewardFactory(points_cost=100, stock=1)
    with pytest.raises(InsufficientPoints):
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    reward.refresh_from_db()
    assert (reward.stock, balance(member)) == (1, 99)
    assert not Redemption.objects.exists()


def test_the_last_unit_goes_once_then_the_reward_is_sold_out(member):
    give(member, 1000)
    reward = factories.RewardFactory(points_cost=100, stock=1)
    redemption_create(member_id=member.pk, reward_id=reward.pk)
    with pytest.raises(RewardUnavailable, match="sold out"):
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    assert balance(member) == 900


def test_the_per_member_limit_counts_issued_and_used_vouchers(member, partner):
    give(member, 10_000)
    reward = factories.RewardFactory(limit_per_member=2)
    first = redemption_create(member_id=member.pk, reward_id=reward.pk)
    voucher_consume(code=first.code, partner=partner)
    redemption_create(member_id=member.pk, reward_id=reward.pk)
    with pytest.raises(RewardUnavailable, match="limit"):
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    other = factories.enrolled_member()
    give(other, 100)
    redemption_create(member_id=other.pk, reward_id=reward.pk)  # the limit is per member


def test_cancelled_vouchers_do_not_count_against_the_limit(member):
    give(member, 1000)
    reward = factories.RewardFactory(limit_per_member=1)
    first = redemption_create(member_id=member.pk, reward_id=reward.pk)
    redemption_cancel(redemption_id=first.pk)
    redemption_create(member_id=member.pk, reward_id=reward.pk)


def test_a_reward_for_a_higher_tier_is_refused_below_it(member, tiers):
    give(member, 10_000)
    gold_only = factories.RewardFactory(min_tier=tiers[2])
    with pytest.raises(RewardUnavailable, match="Gold"):
        redemption_create(member_id=member.pk, reward_id=gold_only.pk)
    Member.objects.filter(pk=member.pk).update(tier=tiers[3])  # Platin is above Gold
    redemption_create(member_id=member.pk, reward_id=gold_only.pk)


def test_a_reward_is_redeemable_only_inside_its_window_while_active_and_listed(member):
    give(member, 10_000)
    now = timezone.now()
    refused = [
        factories.RewardFactory(valid_from=now + timedelta(days=1)),
        factories.RewardFactory(valid_until=now - timedelta(seconds=1)),
        factories.RewardFactory(active=False),
        factories.RewardFactory(in_catalogue=False),  # only given by stamp cards, cashback, campaigns
    ]
    for reward in refused:
        with pytest.raises(RewardUnavailable):
            redemption_create(member_id=member.pk, reward_id=reward.pk)
    inside = factories.RewardFactory(valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1))
    redemption_create(member_id=member.pk, reward_id=inside.pk)
    assert balance(member) == 10_000 - inside.points_cost


def test_a_blocked_member_cannot_redeem(member):
    give(member, 500)
    member_set_status(member_id=member.pk, status=Member.Status.BLOCKED)
    with pytest.raises(MemberNotActive):
        redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)


def test_a_programme_issues_without_catalogue_conditions_but_within_stock(member, tiers):
    reward = factories.RewardFactory(in_catalogue=False, min_tier=tiers[3], limit_per_member=1, stock=2)
    vouchers = [redemption_issue(member_id=member.pk, reward_id=reward.pk, source=Redemption.Source.CAMPAIGN)
                for _ in range(2)]
    assert [voucher.points for voucher in vouchers] == [0, 0]
    with pytest.raises(RewardUnavailable, match="sold out"):
        redemption_issue(member_id=member.pk, reward_id=reward.pk, source=Redemption.Source.CAMPAIGN)
    assert balance(member) == 0 and not PointEntry.objects.filter(member=member).exists()


# --- Cancelling --------------------------------------------------------------------------------

def test_cancel_refunds_points_and_stock_once(member):
    give(member, 100)
    reward = factories.RewardFactory(points_cost=100, stock=1)
    voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)
    cancelled = redemption_cancel(redemption_id=voucher.pk)
    reward.refresh_from_db()
    assert (balance(member), reward.stock) == (100, 1)
    assert cancelled.status == Redemption.Status.CANCELLED and cancelled.cancelled_at is not None
    refund = PointEntry.objects.get(member=member, kind=PointEntry.Kind.REFUND)
    assert (refund.points, refund.source, refund.reference) == (100, "redemption-refund", voucher.code)
    with pytest.raises(VoucherNotCancellable):
        redemption_cancel(redemption_id=voucher.pk)
    reward.refresh_from_db()
    assert (balance(member), reward.stock) == (100, 1)
    assert ledger_mismatches() == []


def test_a_used_voucher_cannot_be_cancelled(member, partner):
    give(member, 100)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    voucher_consume(code=voucher.code, partner=partner)
    with pytest.raises(VoucherNotCancellable):
        redemption_cancel(redemption_id=voucher.pk)
    assert balance(member) == 0


def test_a_voucher_past_its_date_cannot_be_cancelled_even_before_the_expiry_job(member):
    give(member, 100)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    Redemption.objects.filter(pk=voucher.pk).update(issued_at=timezone.now() - timedelta(days=90),
                                                    expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(VoucherNotCancellable):
        redemption_cancel(redemption_id=voucher.pk)
    assert balance(member) == 0


def test_vouchers_follow_a_merge_and_a_cancel_refunds_the_survivor(member):
    duplicate = factories.enrolled_member()
    give(duplicate, 100)
    voucher = redemption_create(member_id=duplicate.pk, reward_id=factories.RewardFactory().pk)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    voucher.refresh_from_db()
    assert voucher.member_id == member.pk
    redemption_cancel(redemption_id=voucher.pk)
    assert (balance(member), balance(duplicate)) == (100, 0)
    assert ledger_mismatches() == []


def test_a_refund_for_a_voucher_left_on_a_merged_duplicate_reaches_the_survivor(member):
    duplicate = factories.enrolled_member()
    give(duplicate, 100)
    voucher = redemption_create(member_id=duplicate.pk, reward_id=factories.RewardFactory().pk)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    Redemption.objects.filter(pk=voucher.pk).update(member=duplicate)  # as a merge before this feature left it
    redemption_cancel(redemption_id=voucher.pk)
    assert (balance(member), balance(duplicate)) == (100, 0)


# --- Expiry ------------------------------------------------------------------------------------

@pytest.mark.parametrize("refund", [False, True])
def test_expired_vouchers_are_marked_and_refunded_only_if_configured(member, partner, refund):
    give(member, 300)
    reward = factories.RewardFactory(points_cost=100, stock=10)
    voucher, used, cancelled = (redemption_create(member_id=member.pk, reward_id=reward.pk) for _ in range(3))
    voucher_consume(code=used.code, partner=partner)
    redemption_cancel(redemption_id=cancelled.pk)
    later = voucher.expires_at + timedelta(days=1)
    with override_settings(LOYALTY_REFUND_EXPIRED_VOUCHERS=refund):
        assert redemptions_expire_due() == 0  # nothing is due yet
        assert redemptions_expire_due(now=later) == 1
        assert redemptions_expire_due(now=later) == 0  # a second run changes nothing
    statuses = {r.pk: r.status for r in Redemption.objects.all()}
    assert statuses == {voucher.pk: "expired", used.pk: "used", cancelled.pk: "cancelled"}
    assert balance(member) == (200 if refund else 100)
    reward.refresh_from_db()
    assert reward.stock == 8  # the cancelled unit came back, the expired one does not
    assert ledger_mismatches() == []


def test_the_expiry_job_works_through_many_vouchers_in_batches(member):
    reward = factories.RewardFactory()
    past = timezone.now() - timedelta(days=1)
    for _ in range(7):
        factories.RedemptionFactory(member=member, reward=reward, issued_at=past - timedelta(days=30),
                                    expires_at=past)
    assert redemptions_expire_due(batch_size=3) == 7
    assert set(Redemption.objects.values_list("status", flat=True)) == {"expired"}


# --- Stock changes from the console ------------------------------------------------------------

def test_restocking_is_relative_to_what_is_left_now(member):
    give(member, 500)
    reward = factories.RewardFactory(stock=5)
    redemption_create(member_id=member.pk, reward_id=reward.pk)  # 4 left, though a form may still show 5
    assert reward_stock_change(reward_id=reward.pk, change=10).stock == 14
    assert reward_stock_change(reward_id=reward.pk, change=-100).stock == 0
    assert reward_stock_change(reward_id=reward.pk, unlimited=True).stock is None
    assert reward_stock_change(reward_id=reward.pk, change=3).stock == 3


# --- Database guards ---------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [{"stock": -1}, {"points_cost": 0}])
def test_the_database_refuses_a_bad_reward(db, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.RewardFactory(**fields)


@pytest.mark.parametrize("fields", [
    {"status": "used"},  # used but no time or partner
    {"status": "cancelled"},  # cancelled but no time
    {"expires_at": timezone.now() - timedelta(days=400)},  # expires before it was issued
])
def test_the_database_refuses_an_inconsistent_voucher(member, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.RedemptionFactory(member=member, **fields)


def test_the_database_refuses_a_second_active_cashback_programme(db):
    factories.CashbackProgramFactory()
    factories.CashbackProgramFactory(active=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.CashbackProgramFactory()


# --- Reads -------------------------------------------------------------------------------------

def test_member_discount_is_the_tier_discount_of_an_active_member(member, tiers):
    assert member_discount_percent(member) == Decimal("0")
    Member.objects.filter(pk=member.pk).update(tier=tiers[2])
    member.refresh_from_db()
    assert member_discount_percent(member) == Decimal("5")
    member_set_status(member_id=member.pk, status=Member.Status.BLOCKED)
    member.refresh_from_db()
    assert member_discount_percent(member) == Decimal("0")


def test_catalogue_lists_what_the_member_can_afford_first(member, tiers, django_assert_max_num_queries):
    give(member, 300)
    cheap = factories.RewardFactory(points_cost=100)
    dear = factories.RewardFactory(points_cost=1000)
    gold = factories.RewardFactory(points_cost=50, min_tier=tiers[2])
    once = factories.RewardFactory(points_cost=10, limit_per_member=1)
    redemption_create(member_id=member.pk, reward_id=once.pk)
    factories.RewardFactory(in_catalogue=False)
    member.refresh_from_db()
    with django_assert_max_num_queries(3):
        rows = catalogue_for(member)
    assert [reward for reward, _ in rows] == [cheap, once, gold, dear]
    reasons = [reason for _, reason in rows]
    assert reasons[0] is None and "limit" in reasons[1] and "Gold" in reasons[2] and "710" in reasons[3]
    assert [reward.pk for reward, _ in catalogue_for(None)] == [r.pk for r in Reward.objects.filter(in_catalogue=True)]
