"""Races on real PostgreSQL: tills selling VIP memberships to one member at the same moment."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from members.models import Member
from rewards.models import Purchase, TierMembership
from rewards.selectors import ledger_mismatches
from rewards.tier_memberships import tier_membership_sell
from tests import factories
from tests.rewards.test_ledger_concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup():
    factories.tier_ladder()
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)
    return factories.enrolled_member(), factories.vip_tier(), factories.PartnerFactory(name="Race GmbH")


def test_concurrent_renewals_line_up_one_after_the_other(setup):
    member, vip, partner = setup
    outcomes = run_in_threads(5, lambda index: tier_membership_sell(
        member_id=member.pk, tier=vip, partner=partner, order_reference=f"VIP-RACE-{index}"))
    assert outcomes == [None] * 5
    memberships = list(TierMembership.objects.order_by("starts"))
    assert len(memberships) == 5
    for earlier, later in pairwise(memberships):
        assert later.starts == earlier.ends + timedelta(days=1)  # no overlap, no gap
    assert Member.objects.get(pk=member.pk).tier == vip
    assert member.tier_history.filter(to_tier=vip).count() == 1  # one change, however many renewals
    assert ledger_mismatches() == []


def test_the_same_sale_retried_at_once_sells_once(setup):
    member, vip, partner = setup
    outcomes = run_in_threads(6, lambda index: tier_membership_sell(
        member_id=member.pk, tier=vip, partner=partner, order_reference="VIP-SAME"))
    assert outcomes == [None] * 6
    assert TierMembership.objects.count() == 1 and Purchase.objects.count() == 1
    assert ledger_mismatches() == []
