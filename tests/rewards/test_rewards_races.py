"""Races on real PostgreSQL: many members for the last unit, two tills for one code, cancel against use."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from members.models import Member
from rewards.errors import RewardUnavailable, VoucherInvalid, VoucherNotCancellable
from rewards.ledger import points_adjust
from rewards.models import PointEntry, Redemption
from rewards.purchases import LineData, purchase_record
from rewards.selectors import ledger_mismatches
from rewards.vouchers import redemption_cancel, redemption_create, voucher_consume
from tests import factories
from tests.rewards.test_ledger_concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def test_fifty_members_racing_for_the_last_unit_get_exactly_one_voucher():
    factories.tier_ladder()
    reward = factories.RewardFactory(points_cost=100, stock=1)
    members = [factories.enrolled_member() for _ in range(50)]
    for member in members:
        points_adjust(member_id=member.pk, points=150, reason="Race", staff_user=None)

    outcomes = run_in_threads(50, lambda index: redemption_create(member_id=members[index].pk, reward_id=reward.pk))

    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(outcome is None or isinstance(outcome, RewardUnavailable) for outcome in outcomes)
    reward.refresh_from_db()
    assert reward.stock == 0
    winner = Redemption.objects.get()
    balances = dict(Member.objects.filter(pk__in=[m.pk for m in members]).values_list("pk", "points_balance"))
    assert balances == {member.pk: 50 if member.pk == winner.member_id else 150 for member in members}
    assert PointEntry.objects.filter(kind=PointEntry.Kind.REDEEM).count() == 1
    assert ledger_mismatches() == []


def test_one_member_redeeming_from_many_tabs_never_goes_below_zero():
    factories.tier_ladder()
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=250, reason="Race", staff_user=None)
    reward = factories.RewardFactory(points_cost=100, stock=None)

    outcomes = run_in_threads(10, lambda index: redemption_create(member_id=member.pk, reward_id=reward.pk))

    assert sum(outcome is None for outcome in outcomes) == 2
    member.refresh_from_db()
    assert member.points_balance == 50
    assert ledger_mismatches() == []


def test_two_tills_consuming_one_code_at_once_use_it_once():
    factories.tier_ladder()
    partner = factories.PartnerFactory()
    stores = [factories.StoreFactory(partner=partner) for _ in range(2)]
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=1000, reason="Race", staff_user=None)
    reward = factories.RewardFactory(points_cost=100)
    for _ in range(5):  # a few rounds make a real overlap near certain
        voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)
        outcomes = run_in_threads(2, lambda index, code=voucher.code: voucher_consume(
            code=code, partner=partner, store=stores[index]))
        assert sorted(type(outcome).__name__ for outcome in outcomes) == ["NoneType", "VoucherInvalid"]
        voucher.refresh_from_db()
        winner = outcomes.index(None)
        assert (voucher.status, voucher.used_at_store_id) == (Redemption.Status.USED, stores[winner].pk)
    connection.close()


def test_a_cancel_racing_a_till_either_refunds_or_is_used_never_both():
    factories.tier_ladder()
    partner = factories.PartnerFactory()
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=500, reason="Race", staff_user=None)
    reward = factories.RewardFactory(points_cost=100)
    for _ in range(5):
        voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)

        def work(index, voucher=voucher):
            if index == 0:
                redemption_cancel(redemption_id=voucher.pk)
            else:
                voucher_consume(code=voucher.code, partner=partner)

        cancel_error, consume_error = run_in_threads(2, work)
        voucher.refresh_from_db()
        if voucher.status == Redemption.Status.CANCELLED:
            assert cancel_error is None and isinstance(consume_error, VoucherInvalid)
        else:
            assert voucher.status == Redemption.Status.USED
            assert consume_error is None and isinstance(cancel_error, VoucherNotCancellable)
    refunds = PointEntry.objects.filter(kind=PointEntry.Kind.REFUND).count()
    member.refresh_from_db()
    assert member.points_balance == 100 * refunds
    assert ledger_mismatches() == []


def test_purchases_racing_for_a_stamp_card_reward_issue_one_voucher_per_full_card():
    factories.tier_ladder()
    partner = factories.PartnerFactory()
    factories.EarningRuleFactory(effect="base", value=1)
    program = factories.StampCardProgramFactory(stamps_needed=4, category="Kaffee", mode="visit")
    member = factories.enrolled_member()

    def buy(index):
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"R{index}", amount=Decimal("3"),
                        lines=[LineData(amount=Decimal("3"), category="Kaffee")])

    outcomes = run_in_threads(10, buy)
    assert outcomes == [None] * 10
    stamps = list(program.cards.filter(member=member).order_by("pk").values_list("stamps", flat=True))
    assert stamps == [4, 4, 2]
    assert Redemption.objects.filter(member=member).count() == 2


def _wait_until_someone_waits_for_a_lock() -> None:
    """Poll PostgreSQL until another session is blocked on a row lock (no fixed sleeps)."""
    with connection.cursor() as cursor:
        for _ in range(2000):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.005)
    raise AssertionError("the second till never waited for the first one's lock")


def test_a_till_that_waited_for_the_other_tills_lock_sees_the_voucher_used():
    """Deterministic: till A has set USED but not committed; till B has found the voucher issued
    and waits for A's row lock. When A commits, B's compare-and-set must find nothing to change."""
    factories.tier_ladder()
    partner = factories.PartnerFactory()
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=100, reason="Race", staff_user=None)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory(points_cost=100).pk)
    a_holds_lock, a_may_commit = threading.Event(), threading.Event()
    outcomes: dict = {}

    def till_a():
        try:
            with transaction.atomic():
                voucher_consume(code=voucher.code, partner=partner)
                a_holds_lock.set()
                a_may_commit.wait(timeout=60)
            outcomes["a"] = None
        except Exception as error:  # collected for the assertions
            outcomes["a"] = error
        finally:
            connection.close()

    def till_b():
        try:
            a_holds_lock.wait(timeout=60)
            voucher_consume(code=voucher.code, partner=partner)
            outcomes["b"] = None
        except Exception as error:  # collected for the assertions
            outcomes["b"] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=till_a), threading.Thread(target=till_b)]
    for thread in threads:
        thread.start()
    a_holds_lock.wait(timeout=60)
    _wait_until_someone_waits_for_a_lock()
    a_may_commit.set()
    for thread in threads:
        thread.join()
    assert outcomes["a"] is None and isinstance(outcomes["b"], VoucherInvalid)
    assert Redemption.objects.get(pk=voucher.pk).status == Redemption.Status.USED
