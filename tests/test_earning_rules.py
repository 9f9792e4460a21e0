"""The earning rule engine: each kind of rule, stacking, caps, and breakdowns that add up."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from rewards.earning import allocate
from rewards.services import LineData, purchase_record
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
                                 cap_points=120, cap_period="month")
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
