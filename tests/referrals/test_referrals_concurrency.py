"""Referrals against real PostgreSQL with threads: doubled deliveries and doubled task runs pay once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from members.models import Member
from referrals import services
from referrals.models import Referral
from rewards.models import PointEntry
from rewards.purchases import purchase_record
from tests import factories
from tests.rewards.test_ledger_concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup():
    factories.tier_ladder()
    factories.ReferralProgramFactory(hold_days=0)
    partner = factories.PartnerFactory(name="Race GmbH")
    referrer = factories.enrolled_member()
    referee = factories.enrolled_member()
    referral = services.referral_attach(referee_id=referee.pk, code=factories.referral_code(referrer),
                                        channel=Referral.Channel.API)
    return partner, referrer, referee, referral


def _assert_paid_once(referral, *members):
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REWARDED
    for member in members:
        assert PointEntry.objects.filter(member=member, source="referral").count() == 1
        member.refresh_from_db()
        assert member.points_balance == PointEntry.objects.filter(member=member).aggregate(
            total=Sum("points", default=0))["total"]


def test_the_same_qualifying_purchase_posted_by_many_threads_qualifies_and_pays_once(setup, monkeypatch):
    partner, referrer, referee, referral = setup
    monkeypatch.setattr("core.tasks.enqueue", lambda task, *args: None)  # paid below, by threads

    def post(index: int) -> None:
        purchase_record(member_id=referee.pk, partner=partner, order_reference="SAME", amount=Decimal("30"))

    assert run_in_threads(8, post) == [None] * 8
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED

    def pay(index: int) -> None:
        services.referral_pay(referral_id=referral.pk, now=timezone.now() + timedelta(seconds=1))

    assert run_in_threads(8, pay) == [None] * 8
    _assert_paid_once(referral, referrer, referee)


def test_different_qualifying_purchases_at_once_qualify_once(setup, monkeypatch):
    partner, _referrer, referee, referral = setup
    monkeypatch.setattr("core.tasks.enqueue", lambda task, *args: None)

    def post(index: int) -> None:
        purchase_record(member_id=referee.pk, partner=partner, order_reference=f"P-{index}", amount=Decimal("30"))

    assert run_in_threads(6, post) == [None] * 6
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED
    assert referral.qualifying_purchase.order_reference.startswith("P-")


def test_paying_while_both_members_are_busy_does_not_deadlock(setup, monkeypatch):
    """Payment locks both members in primary-key order; purchases of both run alongside."""
    partner, referrer, referee, referral = setup
    monkeypatch.setattr("core.tasks.enqueue", lambda task, *args: None)
    purchase_record(member_id=referee.pk, partner=partner, order_reference="Q", amount=Decimal("30"))
    members = [referrer, referee]

    def work(index: int) -> None:
        if index % 3 == 0:
            services.referral_pay(referral_id=referral.pk, now=timezone.now() + timedelta(seconds=1))
        else:
            member = members[index % 2]
            purchase_record(member_id=member.pk, partner=partner, order_reference=f"B-{index}", amount=Decimal("5"))

    assert run_in_threads(12, work) == [None] * 12
    _assert_paid_once(referral, referrer, referee)
    assert Member.objects.get(pk=referrer.pk).points_balance >= 500


def test_two_referrers_claiming_one_friend_at_once_one_wins(setup):
    from referrals.errors import ReferralNotAllowed

    friend = factories.enrolled_member()
    codes = [factories.referral_code(factories.enrolled_member()) for _ in range(4)]

    def claim(index: int) -> None:
        services.referral_attach(referee_id=friend.pk, code=codes[index], channel=Referral.Channel.API)

    outcomes = run_in_threads(4, claim)
    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(outcome is None or isinstance(outcome, ReferralNotAllowed) for outcome in outcomes), outcomes
    assert Referral.objects.filter(referee=friend).count() == 1
