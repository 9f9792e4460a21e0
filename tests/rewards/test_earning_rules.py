"""The earning rule engine: each kind of rule, stacking, caps, and breakdowns that add up."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from members.models import Tier
from rewards.earning import LineInput, PurchaseInput, allocate, compute_points
from rewards.models import EarningRule
from rewards.purchases import LineData, purchase_record
from tests import factories

BERLIN = ZoneInfo("Europe/Berlin")


def buy(member, partner, amount, reference, lines=None, **kwargs):
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=Decimal(amount),
                           lines=lines, **kwargs).purchase


def breakdown(purchase):
    return [(part.kind, part.points) for part in purchase.breakdown.all()]


def test_allocate_is_exact_and_proportional():
    assert allocate(10, [Decimal(1), Decimal(1), Decimal(1)]) == [4, 3, 3]
    assert sum(allocate(97, [Decimal("33.33"), Decimal("66.67")])) == 97
    assert allocate(0, [Decimal(1)]) == [0]


def test_base_rate_per_currency(member, partner):
    factories.EarningRuleFactory(name_de="EUR", effect="base", value=1, currency="EUR")
    factories.EarningRuleFactory(name_de="CHF", effect="base", value=2, currency="CHF")
    assert buy(member, partner, "10.99", "E").points_earned == 10
    assert buy(member, partner, "10.99", "C", currency="CHF").points_earned == 21


def test_category_multiplier_only_on_its_lines_and_lines_add_up(member, partner, base_rule):
    factories.EarningRuleFactory(name_de="Kaffee ×2", effect="multiplier", value=2, category="Kaffee")
    lines = [LineData(Decimal("10"), "Kaffee"), LineData(Decimal("20"), "Wein")]
    purchase = buy(member, partner, "30", "P", lines=lines)
    assert breakdown(purchase) == [("base", 30), ("multiplier", 10)]
    assert [line.points for line in purchase.lines.order_by("pk")] == [20, 20]  # 10 + 10 coffee, 20 wine


def test_weekday_store_and_window_promotions(member, partner, base_rule):
    store = factories.StoreFactory(partner=partner)
    other = factories.StoreFactory(partner=partner)
    saturday = datetime(2026, 11, 21, 12, tzinfo=BERLIN)
    weekend = factories.EarningRuleFactory(name_de="Wochenende", effect="multiplier", value=2, weekdays="5,6")
    in_store = factories.EarningRuleFactory(name_de="Filiale", effect="bonus", value=5)
    in_store.stores.add(store)
    window = factories.EarningRuleFactory(name_de="Aktion", effect="bonus", value=7,
                                          valid_from=saturday - timedelta(days=1),
                                          valid_until=saturday + timedelta(days=1))
    assert breakdown(buy(member, partner, "10", "SAT", occurred_at=saturday, store=store)) == [
        ("base", 10), ("multiplier", 10), ("bonus", 5), ("bonus", 7)]
    monday = saturday + timedelta(days=2)
    assert breakdown(buy(member, partner, "10", "MON", occurred_at=monday, store=other)) == [("base", 10)]
    assert weekend.pk and window.pk


def test_exclusive_rule_applies_alone(member, partner, base_rule):
    factories.EarningRuleFactory(name_de="Exklusiv ×3", effect="multiplier", value=3, stackable=False, priority=200)
    factories.EarningRuleFactory(name_de="Bonus", effect="bonus", value=50, priority=100)
    assert breakdown(buy(member, partner, "10", "X")) == [("base", 10), ("multiplier", 20)]


def test_exclusive_rule_is_skipped_when_a_higher_promotion_already_applied(member, partner, base_rule):
    factories.EarningRuleFactory(name_de="Bonus", effect="bonus", value=50, priority=300)
    factories.EarningRuleFactory(name_de="Exklusiv ×3", effect="multiplier", value=3, stackable=False, priority=200)
    assert breakdown(buy(member, partner, "10", "X")) == [("base", 10), ("bonus", 50)]


def test_minimum_amount_and_cap_per_member_and_month(member, partner, base_rule):
    factories.EarningRuleFactory(name_de="50 ab 100 €", effect="bonus", value=50, min_amount=Decimal("100"),
                                 currency="EUR", cap_points=120, cap_period="month")
    now = timezone.now()
    assert buy(member, partner, "99.99", "A", occurred_at=now).points_earned == 99
    assert buy(member, partner, "100", "B", occurred_at=now).points_earned == 150
    assert buy(member, partner, "100", "C", occurred_at=now).points_earned == 150
    assert buy(member, partner, "100", "D", occurred_at=now).points_earned == 120  # only 20 left under the cap
    assert buy(member, partner, "100", "E", occurred_at=now).points_earned == 100
    other = factories.enrolled_member()
    assert buy(other, partner, "100", "F", occurred_at=now).points_earned == 150  # caps are per member


def test_inactive_and_expired_rules_give_nothing(member, partner, base_rule):
    factories.EarningRuleFactory(name_de="Aus", effect="bonus", value=50, active=False)
    factories.EarningRuleFactory(name_de="Vorbei", effect="bonus", value=50,
                                 valid_until=timezone.now() - timedelta(days=1))
    assert buy(member, partner, "10", "X").points_earned == 10


def test_rule_changes_reach_the_next_purchase(member, partner, base_rule):
    assert buy(member, partner, "10", "A").points_earned == 10
    base_rule.value = Decimal("3")
    base_rule.save()
    assert buy(member, partner, "10", "B").points_earned == 30


def test_a_late_purchase_counts_against_the_cap_of_its_own_month(member, partner, base_rule):
    """Regression: the cap counted every purchase since the start of the purchase's month, so a
    purchase posted late for last month (an offline till) was capped by this month's points."""
    factories.EarningRuleFactory(name_de="50 pro Monat", effect="bonus", value=50, cap_points=50, cap_period="month")
    now = timezone.now()
    assert buy(member, partner, "10", "NOW", occurred_at=now).points_earned == 60
    assert buy(member, partner, "10", "NOW-2", occurred_at=now).points_earned == 10  # this month's cap is used
    assert buy(member, partner, "10", "LATE", occurred_at=now - timedelta(days=40)).points_earned == 60
    assert buy(member, partner, "10", "LATE-2", occurred_at=now - timedelta(days=40)).points_earned == 10


def test_daily_cap_starts_again_at_local_midnight(member, partner, base_rule):
    factories.EarningRuleFactory(name_de="20 pro Tag", effect="bonus", value=20, cap_points=20, cap_period="day")
    evening = datetime(2026, 3, 28, 23, 30, tzinfo=BERLIN)  # the night clocks go forward
    assert buy(member, partner, "10", "A", occurred_at=evening).points_earned == 30
    assert buy(member, partner, "10", "B", occurred_at=evening + timedelta(minutes=20)).points_earned == 10
    assert buy(member, partner, "10", "C", occurred_at=evening + timedelta(minutes=40)).points_earned == 30


def test_tier_only_promotion_and_tier_multiplier_on_category_lines(member, partner, base_rule, tiers):
    from members.models import Member

    Member.objects.filter(pk=member.pk).update(tier=tiers[2])  # Gold ×1.25
    factories.EarningRuleFactory(name_de="Gold-Bonus", effect="bonus", value=15, tier=tiers[2])
    factories.EarningRuleFactory(name_de="Platin-Bonus", effect="bonus", value=99, tier=tiers[3])
    factories.EarningRuleFactory(name_de="Wein ×2", effect="multiplier", value=2, category="Wein")
    lines = [LineData(Decimal("40"), "Wein"), LineData(Decimal("20"), "Brot")]
    purchase = buy(member, partner, "60", "G", lines=lines)
    # base 60; Gold: 60 × 0.25 = 15; Wein ×2: 40 × 1 = 40; the Gold bonus 15; no Platin bonus.
    assert breakdown(purchase) == [("base", 60), ("tier", 15), ("bonus", 15), ("multiplier", 40)]
    assert purchase.points_earned == 130
    wine, bread = purchase.lines.order_by("pk")
    # Bread earns only its base and its share of the tier and of the bonus, no wine points.
    assert wine.points + bread.points == 130
    assert bread.points == 20 + 5 + 5
    assert wine.points == 40 + 10 + 40 + 10


# --- The engine as a pure function: breakdowns and lines always add up ---------------------

_rule_pk = iter(range(1, 10**9))


@st.composite
def rule_sets(draw):
    rules = []
    stores = {}
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        effect = draw(st.sampled_from(["base", "multiplier", "bonus"]))
        rule = EarningRule(
            pk=next(_rule_pk), name_de="r", active=True, effect=effect,
            priority=draw(st.integers(min_value=1, max_value=5)),
            value=draw(st.decimals(min_value=Decimal("0.5"), max_value=Decimal("5"), places=2)),
            stackable=draw(st.booleans()),
            category=draw(st.sampled_from(["", "Kaffee", "Wein"])),
            min_amount=draw(st.none() | st.decimals(min_value=Decimal("1"), max_value=Decimal("300"), places=2)),
            weekdays=draw(st.sampled_from(["", "5,6", "0"])),
        )
        rules.append(rule)
        stores[rule.pk] = draw(st.sampled_from([frozenset(), frozenset({1}), frozenset({2})]))
    return rules, stores


@given(
    data=rule_sets(),
    amounts=st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2),
                     min_size=1, max_size=5),
    categories=st.lists(st.sampled_from(["", "Kaffee", "Wein", "Brot"]), min_size=5, max_size=5),
    store=st.sampled_from([None, 1, 2]),
    multiplier=st.sampled_from([Decimal("1"), Decimal("1.25"), Decimal("1.5")]),
    caps=st.none() | st.integers(min_value=0, max_value=30),
    day=st.integers(min_value=0, max_value=6),
)
@hypothesis_settings(max_examples=200, deadline=None)
def test_breakdown_and_lines_always_add_up_to_the_total(data, amounts, categories, store, multiplier, caps, day):
    rules, stores = data
    lines = [LineInput(amount=amount, category=categories[index]) for index, amount in enumerate(amounts)]
    purchase = PurchaseInput(
        amount=sum(amounts, Decimal(0)), currency="EUR", channel="store", store_id=store,
        occurred_at=datetime(2026, 11, 16 + day, 12, tzinfo=BERLIN), lines=lines,
        tier=Tier(pk=9, rank=2, earn_multiplier=multiplier),
    )
    result = compute_points(purchase, rules, store_ids_of=lambda rule: stores[rule.pk],
                            cap_remaining=lambda rule: caps)
    assert all(component.points > 0 for component in result.components)
    assert sum(result.line_points) == result.total == sum(component.points for component in result.components)
    assert all(points >= 0 for points in result.line_points)
    # A promotion limited to a category lands on that category's lines only.
    for component in result.components:
        if component.rule is not None and component.rule.category and component.kind != "base":
            weights = [line.amount if line.category.casefold() == component.rule.category.casefold() else 0
                       for line in lines]
            assert any(weights)
    # At most one exclusive promotion, and then no other promotion.
    promotions = [c.rule for c in result.components if c.kind in ("multiplier", "bonus")]
    if any(not rule.stackable for rule in promotions):
        assert len(promotions) == 1
    if caps is not None:
        assert all(c.points <= caps for c in result.components if c.kind in ("multiplier", "bonus"))


@given(total=st.integers(min_value=0, max_value=10_000),
       weights=st.lists(st.decimals(min_value=Decimal("0"), max_value=Decimal("999"), places=2), min_size=1,
                        max_size=8))
def test_allocate_sums_exactly_and_gives_nothing_to_zero_weights(total, weights):
    shares = allocate(total, weights)
    if sum(weights) > 0:
        assert sum(shares) == total
        for share, weight in zip(shares, weights, strict=True):
            exact = Decimal(total) * weight / sum(weights)
            assert exact - 1 < share < exact + 1  # never more than one point off its exact share
            if weight == 0:
                assert share == 0
    else:
        assert shares == [0] * len(weights)
