"""The hot paths run a fixed number of queries: a later change cannot quietly add one. When a
change needs another query on purpose, raise the number here in the same commit and say why."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from rewards.services import points_credit
from tests import factories
from tests.api_support import purchase_body

# At most this many queries per request, as counted on 2026-11-30 (lower them when you optimise;
# the key lookup is cached per process after the first request).
PURCHASE_EARN = 27  # idempotency lock and record, key, member lock, purchase, lines, breakdown, ledger, tier, ...
BALANCE_READ = 1  # the member with its figures, in one statement (the key and tiers are cached)
REDEMPTION = 21
VOUCHER_CONSUME = 12


def _count(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code in (200, 201), response.text
    return len(captured), response


def test_hot_path_query_counts(api, member):
    api.post("/purchases/", purchase_body(member, "WARM-UP"))  # rule cache and tier lookups warm
    earn, _ = _count(lambda: api.post("/purchases/", purchase_body(member, "Q-1")))
    balance, _ = _count(lambda: api.get(f"/members/{member.pk}/balance/"))
    points_credit(member_id=member.pk, points=500, reason="queries")
    reward = factories.RewardFactory(points_cost=100)
    redeem, voucher = _count(lambda: api.post("/redemptions/", {"member_id": member.pk, "reward_id": reward.pk}))
    consume, _ = _count(lambda: api.post("/vouchers/consume/", {"code": voucher.json()["code"], "store": "S1"}))
    assert earn <= PURCHASE_EARN and balance <= BALANCE_READ, (earn, balance)
    assert redeem <= REDEMPTION and consume <= VOUCHER_CONSUME, (redeem, consume)
