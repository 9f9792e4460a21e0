"""Races against real PostgreSQL: several purchases of one member complete a challenge at once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from engagement.models import ChallengeProgress, MemberBadge
from rewards.models import PointEntry, Redemption
from rewards.purchases import purchase_record
from tests import factories
from tests.concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)



def test_concurrent_purchases_completing_a_challenge_reward_once_and_keep_the_ledger(tiers, partner, base_rule):
    member = factories.enrolled_member()
    other = factories.enrolled_member()
    badge = factories.BadgeFactory()
    reward = factories.RewardFactory(points_cost=200)
    challenge = factories.ChallengeFactory(target=3, reward_points=250, reward=reward, badge=badge)
    spend = factories.ChallengeFactory(goal="spend", target=Decimal("50"), reward_points=75)

    def work(index: int) -> None:
        buyer = member if index % 4 else other
        purchase_record(member_id=buyer.pk, partner=partner, order_reference=f"RACE-{index}", amount=Decimal("10"))

    outcomes = run_in_threads(12, work)
    assert outcomes == [None] * 12

    for person, purchases in ((member, 9), (other, 3)):
        row = ChallengeProgress.objects.get(member=person, challenge=challenge)
        assert row.value == purchases and row.rewarded
        assert PointEntry.objects.filter(member=person, source="challenge", reference=f"{challenge.pk}:{person.pk}"
                                         ).count() == 1
        assert Redemption.objects.filter(member=person, source="challenge").count() == 1
        assert MemberBadge.objects.filter(member=person, badge=badge).count() == 1
    assert ChallengeProgress.objects.get(member=member, challenge=spend).value == Decimal("90")
    assert PointEntry.objects.filter(member=member, reference=f"{spend.pk}:{member.pk}").count() == 1
    call_command("verify_ledger")  # raises (non-zero exit) when a balance disagrees with its entries
