"""Donations racing on real PostgreSQL: two donations on a balance for one, one succeeds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from rewards.errors import InsufficientPoints
from rewards.ledger import points_adjust
from rewards.models import Donation, DonationCause, PointEntry, Reward
from rewards.selectors import ledger_mismatches
from rewards.vouchers import redemption_create
from tests import factories
from tests.rewards.test_ledger_concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_parallel_donations_on_a_balance_for_one_make_one_donation():
    factories.tier_ladder()
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=300, reason="Race", staff_user=None)
    cause = DonationCause.objects.create(name_de="Tafel", organisation="Tafel e. V.")
    reward = factories.RewardFactory(kind=Reward.Kind.DONATION, cause=cause, points_cost=200,
                                     value=Decimal("2.00"), currency="EUR", stock=None)

    outcomes = run_in_threads(2, lambda index: redemption_create(member_id=member.pk, reward_id=reward.pk))

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["InsufficientPoints", "NoneType"]
    assert any(isinstance(outcome, InsufficientPoints) for outcome in outcomes)
    member.refresh_from_db()
    assert member.points_balance == 100
    assert Donation.objects.count() == 1
    assert PointEntry.objects.filter(kind=PointEntry.Kind.REDEEM, source="donation").count() == 1
    assert ledger_mismatches() == []
    call_command("verify_ledger")  # raises (CommandError) when a balance and its entries disagree
