"""The balance answer is built field by field with the tiers' answers kept per process
(rewards.api_balance.balance_representation): the same JSON as BalanceSerializer, in the
request's language, and a changed tier shows on the next read."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from rewards.api_balance import BalanceSerializer, balance_representation
from rewards.rule_cache import tier_ladder
from tests import factories


def _figures(tier, next_tier) -> dict:
    return {"member_id": uuid.uuid4(), "available": 620, "pending": 15, "tier": tier, "next_tier": next_tier,
            "qualifying_points": 500, "points_to_next_tier": 1500, "progress_percent": 0, "expiring_points": 120,
            "expiring_until": timezone.now(), "discount_percent": Decimal("2")}


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("ranks", [(1, 2), (3, None), (None, 0)])
def test_the_balance_answer_is_what_the_serializer_gives(tiers, language, ranks):
    ladder = {tier.rank: tier for tier in tier_ladder()}  # the process's copies, as the view uses them
    data = _figures(*(ladder.get(rank) for rank in ranks))
    with translation.override(language):
        expected = BalanceSerializer(data).data
        assert balance_representation(data) == expected
        assert list(balance_representation(data)) == list(expected)  # the same order of keys
        assert balance_representation(data) == expected  # the kept tier answers too


def test_the_balance_shows_the_tier_in_the_request_language_and_a_renamed_tier_at_once(api, member, tiers):
    factories.relate(member, api.partner)
    url = f"/members/{member.public_id}/balance/"
    assert api.get(url).json()["tier"]["name"] == "Basic"
    assert api.get(url, headers={"Accept-Language": "de"}).json()["tier"]["name"] == "Basis"
    tiers[0].name_en = "Starter"
    tiers[0].save()
    assert api.get(url).json()["tier"]["name"] == "Starter"
    assert api.get(url).json()["next_tier"]["name"] == "Silver"
