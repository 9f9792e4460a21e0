"""Purchase conditions over a period read the rollups (rewards.MemberMonth, MemberCategory) and
the cut month's purchases, and select exactly the members that the definition over all
purchases selects: random purchases with returns, CHF, merged members, purchases on the
period's first moment and just before it, purchases after "now", members without purchases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.segments import Condition, compile_conditions
from members.merge import member_merge
from members.models import Member
from rewards.models import Purchase
from tests import factories

NOWS = [datetime(2026, 6, 15, 12, 0, tzinfo=UTC),  # mid-month: the cut month's rest from purchases
        datetime(2026, 6, 3, 8, 30, tzinfo=UTC),  # early: the whole month less what came before
        datetime(2026, 7, 1, 0, 0, tzinfo=UTC)]  # a month boundary (30 days back is one too)
PERIODS = [1, 3, 30, 45, 90, 180, 400]


def eur(purchase: Purchase) -> Decimal:
    rate = Decimal(str(settings.LOYALTY_CURRENCY_TO_EUR.get(purchase.currency, "1")))
    return (purchase.amount - purchase.returned_amount) * rate


def compare(total: Decimal, operator: str, value) -> bool:
    if operator == "between":
        return value[0] <= total <= value[1]
    return {"eq": total == value, "ne": total != value, "gt": total > value, "gte": total >= value,
            "lt": total < value, "lte": total <= value}[operator]


def expected(condition: Condition, now: datetime, value) -> set[int]:
    """The definition, member by member over all their purchases."""
    since = now - timedelta(days=condition.days)
    chosen = set()
    for member in Member.objects.active().prefetch_related("purchases__lines", "purchases__store"):
        bought = [purchase for purchase in member.purchases.all() if purchase.occurred_at >= since]
        if condition.field == "purchases":
            hit = compare(Decimal(len(bought)), condition.operator, value)
        elif condition.field == "spend":
            hit = compare(sum((eur(purchase) for purchase in bought), Decimal(0)), condition.operator, value)
        elif condition.field == "average_order":
            total = sum((eur(purchase) for purchase in bought), Decimal(0))
            scaled = (value[0] * len(bought), value[1] * len(bought)) if condition.operator == "between" else (
                value * len(bought))
            hit = bool(bought) and compare(total, condition.operator, scaled)
        elif condition.field == "category":
            wanted = {category.upper() for category in condition.value.split(",")}
            hit = any(line.category.upper() in wanted for purchase in bought for line in purchase.lines.all())
            hit = not hit if condition.operator == "not_in" else hit
        else:
            wanted = set(condition.value.split(","))
            hit = any(purchase.store and purchase.store.code in wanted for purchase in bought)
            hit = not hit if condition.operator == "not_in" else hit
        if hit:
            chosen.add(member.pk)
    return chosen


def matching(condition: Condition, now: datetime) -> set[int]:
    return set(Member.objects.active().filter(compile_conditions([condition], now=now)).values_list("pk", flat=True))


@pytest.fixture
def shoppers(tiers):
    """Members with random purchases; some at the periods' first moments, some merged, some without any."""
    rng = random.Random(24)
    partner = factories.PartnerFactory()
    stores = [factories.StoreFactory(partner=partner, code=code) for code in ("BER-01", "HAM-02")]
    members = [factories.enrolled_member() for _ in range(24)]
    edges = [now - timedelta(days=days) for now in NOWS for days in PERIODS]
    for number, member in enumerate(members[:20]):
        for _ in range(rng.randint(1, 9)):
            if rng.random() < 0.3:
                moment = rng.choice(edges) - rng.choice([timedelta(0), timedelta(microseconds=1)])
            else:
                moment = NOWS[0] - timedelta(days=rng.uniform(-20, 450))  # some after "now"
            amount = Decimal(rng.choice([10, 20, 30, 60, 60, 90, 120])) + Decimal(rng.choice([0, 0, 0.55])).quantize(
                Decimal("0.01"))
            returned = rng.choice([Decimal(0), Decimal(0), Decimal(0), amount, (amount / 3).quantize(Decimal("0.01"))])
            purchase = factories.PurchaseFactory(
                member=member, partner=partner, store=rng.choice([None, *stores]), occurred_at=moment,
                amount=amount, currency=rng.choice(["EUR", "EUR", "CHF"]), returned_amount=returned)
            for category in rng.sample(["Kaffee", "kaffee", "Wein", "Tee", ""], rng.randint(0, 2)):
                factories.PurchaseLineFactory(purchase=purchase, category=category, amount=amount)
        if number % 7 == 6:  # a duplicate folded into the previous member: its purchases move
            member_merge(survivor_id=members[number - 1].pk, duplicate_id=member.pk)
    return members


CONDITIONS = [
    ("purchases", "gte", "2"), ("purchases", "lte", "1"), ("purchases", "eq", "0"), ("purchases", "ne", "1"),
    ("purchases", "between", "1,3"), ("purchases", "lt", "2"),
    ("spend", "gte", "100"), ("spend", "lte", "60"), ("spend", "eq", "0"), ("spend", "between", "20,150.55"),
    ("spend", "gt", "0"),
    ("average_order", "gte", "60"), ("average_order", "lt", "40"), ("average_order", "eq", "60"),
    ("average_order", "ne", "20"), ("average_order", "between", "20,60"),
    ("category", "in", "Kaffee"), ("category", "in", "WEIN,tee"), ("category", "not_in", "kaffee"),
    ("store", "in", "BER-01"), ("store", "not_in", "HAM-02"),
]


@pytest.mark.parametrize(("field", "operator", "text"), CONDITIONS)
def test_period_conditions_select_what_the_definition_over_all_purchases_selects(shoppers, field, operator, text):
    from campaigns.segments import condition_validate

    for now in NOWS:
        for days in PERIODS:
            condition = Condition(field, operator, text, days=days)
            value = condition_validate(condition)
            assert matching(condition, now) == expected(condition, now, value), (now, days)


def test_counts_spend_and_averages_read_whole_months_from_the_rollup(shoppers):
    with CaptureQueriesContext(connection) as queries:
        matching(Condition("average_order", "gte", "60", days=180), NOWS[0])
    sql = queries.captured_queries[-1]["sql"]
    assert "rewards_membermonth" in sql
    assert "2026-01-01" in sql  # 180 days back is 17 December: purchases only until the month ends
