"""Races against real PostgreSQL: many threads on one member, duplicate purchases in parallel."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum, Window
from django.utils import timezone

from rewards.errors import InsufficientPoints, InvalidReturn
from rewards.ledger import points_debit, points_expire_due
from rewards.models import PointEntry, Purchase
from rewards.purchases import purchase_record
from rewards.returns import purchase_return
from tests import factories
from tests.concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.fixture
def setup_member():
    tiers = factories.tier_ladder()
    partner = factories.PartnerFactory(name="Race GmbH")
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1)
    member = factories.enrolled_member()
    purchase_record(member_id=member.pk, partner=partner, order_reference="START", amount=Decimal("100"))
    return member, partner, tiers


def test_fifty_threads_earning_and_debiting_keep_the_ledger_exact(setup_member):
    member, partner, _ = setup_member

    def work(index: int) -> None:
        if index % 2 == 0:
            purchase_record(member_id=member.pk, partner=partner, order_reference=f"T-{index}", amount=Decimal("10"))
        else:
            points_debit(member_id=member.pk, points=30, reason="race", source="race", reference=str(index))

    outcomes = run_in_threads(50, work)
    assert all(outcome is None or isinstance(outcome, InsufficientPoints) for outcome in outcomes), outcomes

    member.refresh_from_db()
    entries = PointEntry.objects.filter(member=member)
    total = entries.aggregate(total=Sum("points"))["total"]
    assert member.points_balance == total
    credited = 100 + 25 * 10
    debits = entries.filter(kind=PointEntry.Kind.REDEEM).count()
    refused = sum(isinstance(outcome, InsufficientPoints) for outcome in outcomes)
    assert debits + refused == 25
    assert total == credited - 30 * debits

    # The running balance, in commit order, never dipped below zero.
    running = (entries.annotate(running=Window(Sum("points"), order_by=["id"])).values_list("running", flat=True))
    assert min(running) >= 0


def test_the_same_purchase_posted_in_parallel_credits_once(setup_member):
    member, partner, _ = setup_member

    def work(index: int) -> None:
        purchase_record(member_id=member.pk, partner=partner, order_reference="DUP-1", amount=Decimal("42"))

    outcomes = run_in_threads(10, work)
    assert outcomes == [None] * 10
    assert Purchase.objects.filter(order_reference="DUP-1").count() == 1
    member.refresh_from_db()
    assert member.points_balance == 100 + 42
    assert PointEntry.objects.filter(purchase__order_reference="DUP-1").count() == 1


def test_debits_racing_for_the_last_points_let_exactly_one_through(setup_member):
    member, _, _ = setup_member  # 100 points

    def work(index: int) -> None:
        points_debit(member_id=member.pk, points=100, reason="last points", source="race-last", reference=str(index))

    outcomes = run_in_threads(20, work)
    assert sum(outcome is None for outcome in outcomes) == 1
    member.refresh_from_db()
    assert member.points_balance == 0


def test_the_same_debit_reference_in_parallel_debits_once(setup_member):
    member, _, _ = setup_member  # 100 points

    def work(index: int) -> None:
        points_debit(member_id=member.pk, points=30, reason="retry", source="redemption", reference="R-1")

    assert run_in_threads(10, work) == [None] * 10
    member.refresh_from_db()
    assert member.points_balance == 70
    assert PointEntry.objects.filter(source="redemption", reference="R-1").count() == 1


def test_the_same_purchase_posted_fifty_times_at_once_credits_once(setup_member):
    member, partner, _ = setup_member

    def work(index: int) -> None:
        purchase_record(member_id=member.pk, partner=partner, order_reference="DUP-50", amount=Decimal("12.34"))

    assert run_in_threads(50, work) == [None] * 50
    member.refresh_from_db()
    assert member.points_balance == 100 + 12
    assert PointEntry.objects.filter(purchase__order_reference="DUP-50").count() == 1


def test_parallel_returns_never_give_back_more_than_was_bought(setup_member):
    member, partner, _ = setup_member
    purchase = purchase_record(member_id=member.pk, partner=partner, order_reference="RET",
                               amount=Decimal("10")).purchase

    def work(index: int) -> None:
        purchase_return(purchase_id=purchase.pk, reference=f"R-{index}", amount=Decimal("2"))

    outcomes = run_in_threads(10, work)
    assert sum(outcome is None for outcome in outcomes) == 5, outcomes
    assert all(outcome is None or isinstance(outcome, InvalidReturn) for outcome in outcomes), outcomes
    purchase.refresh_from_db()
    assert (purchase.returned_amount, purchase.points_reversed) == (Decimal("10"), 10)
    member.refresh_from_db()
    assert member.points_balance == 100 == PointEntry.objects.filter(member=member).aggregate(s=Sum("points"))["s"]


def test_two_expiry_jobs_at_once_expire_once(setup_member):
    member, partner, _ = setup_member
    old = timezone.now() - timedelta(days=800)
    purchase_record(member_id=member.pk, partner=partner, order_reference="OLD", amount=Decimal("60"),
                    occurred_at=old, booked_at=old)
    now = timezone.now()
    reports: list = [None] * 4

    def work(index: int) -> None:
        reports[index] = points_expire_due(now=now)

    assert run_in_threads(4, work) == [None] * 4
    assert sorted(report.points for report in reports) == [0, 0, 0, 60]
    member.refresh_from_db()
    assert member.points_balance == 100
    assert PointEntry.objects.filter(kind=PointEntry.Kind.EXPIRE).count() == 1


def test_threads_earning_through_the_one_statement_on_one_member_keep_the_ledger_exact(setup_member):
    """The statement locks the member like the ORM path: twenty purchases at once, each booked
    once, the balance their sum, the statistics counted twenty times."""
    from unittest import mock

    from django.core.management import call_command

    from rewards import ledger

    member, partner, _ = setup_member  # 100 points
    statuses = []
    statement = ledger.purchase_earn_statement

    def counted(request):
        answer = statement(request)
        statuses.append(answer.status)
        return answer

    def work(index: int) -> None:
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"ONE-{index}", amount=Decimal("7.50"))

    with mock.patch("rewards.purchases.purchase_earn_statement", counted):
        outcomes = run_in_threads(20, work)
    assert outcomes == [None] * 20
    assert statuses == ["created"] * 20
    member.refresh_from_db()
    assert member.points_balance == 100 + 20 * 7
    assert member.purchases_12m == 21 and member.lifetime_spend == Decimal("250.00")
    call_command("verify_ledger")  # raises on any member whose balance isn't its entries


def test_two_members_posting_the_same_reference_at_once_one_gets_a_conflict(setup_member):
    """Different members lock different rows: the purchase's unique reference decides, in the
    statement as in the ORM path (ReferenceConflict, nothing written for the loser)."""
    from core.errors import ReferenceConflict

    member, partner, _ = setup_member
    other = factories.enrolled_member()
    buyers = [member.pk, other.pk] * 4

    def work(index: int) -> None:
        purchase_record(member_id=buyers[index], partner=partner, order_reference="SHARED", amount=Decimal("10"))

    outcomes = run_in_threads(len(buyers), work)
    owner = Purchase.objects.get(order_reference="SHARED").member_id
    for buyer, outcome in zip(buyers, outcomes, strict=True):
        assert outcome is None if buyer == owner else isinstance(outcome, ReferenceConflict), (buyer, outcome)
    assert PointEntry.objects.filter(purchase__order_reference="SHARED").count() == 1
