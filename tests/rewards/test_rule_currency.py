"""Money thresholds of earning rules are in one currency: "50 Bonuspunkte ab 100 €" is not met
by 120 CHF; the marketer makes one rule per currency, the console insists on the currency, the
simulation and the terms page follow it, and rules written before are read as euros."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone, translation

from rewards.models import EarningRule
from rewards.purchases import purchase_record
from rewards.selectors import program_terms
from rewards.simulation import earning_rule_simulate
from tests import factories


def bonus_rule(currency: str, **fields) -> EarningRule:
    return factories.EarningRuleFactory(name_de=f"50 Bonuspunkte ab 100 {currency}", effect="bonus", value=50,
                                        min_amount=Decimal("100"), currency=currency, priority=30, **fields)


def bonuses(outcome) -> list[str]:
    return [part.rule.name_de for part in outcome.purchase.breakdown.all() if part.kind == "bonus"]


def test_a_chf_purchase_of_120_gets_the_chf_bonus_and_not_the_euro_one(member, partner, base_rule):
    bonus_rule("EUR")
    bonus_rule("CHF")
    in_francs = purchase_record(member_id=member.pk, partner=partner, order_reference="CH-1",
                                amount=Decimal("120"), currency="CHF")
    in_euros = purchase_record(member_id=member.pk, partner=partner, order_reference="DE-1",
                               amount=Decimal("120"), currency="EUR")
    assert bonuses(in_francs) == ["50 Bonuspunkte ab 100 CHF"]
    assert bonuses(in_euros) == ["50 Bonuspunkte ab 100 EUR"]


def test_the_console_refuses_a_minimum_amount_without_its_currency(client, tiers):
    client.force_login(factories.staff_in("Marketing"))
    data = {"name_de": "50 Bonuspunkte ab 100 €", "name_en": "", "priority": "30", "effect": "bonus", "value": "50",
            "stackable": "on", "valid_from_0": "", "valid_from_1": "", "valid_until_0": "", "valid_until_1": "",
            "weekdays": "", "currency": "", "min_amount": "100", "channel": "", "category": "", "tier": "",
            "cap_points": "", "cap_period": "", "_save": "1"}
    response = client.post(reverse("admin:rewards_earningrule_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["currency"]
    assert not EarningRule.objects.exists()

    response = client.post(reverse("admin:rewards_earningrule_add"), {**data, "currency": "EUR"})
    assert response.status_code == 302
    assert EarningRule.objects.get().currency == "EUR"


def test_the_database_refuses_a_minimum_amount_without_its_currency(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.EarningRuleFactory(effect="bonus", value=50, min_amount=Decimal("100"), currency="")


def test_the_simulation_counts_only_purchases_in_the_rules_currency(member, partner, base_rule):
    for index, currency in enumerate(["EUR", "EUR", "CHF"]):
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"P-{index}", amount=Decimal("120"),
                        currency=currency, occurred_at=timezone.now() - timedelta(days=1))
    francs = EarningRule(name_de="ab 100 CHF", effect="bonus", value=Decimal("50"), min_amount=Decimal("100"),
                         currency="CHF")
    euros = EarningRule(name_de="ab 100 EUR", effect="bonus", value=Decimal("50"), min_amount=Decimal("100"),
                        currency="EUR")
    assert earning_rule_simulate(rule=francs, days=7).purchases_affected == 1
    assert earning_rule_simulate(rule=euros, days=7).purchases_affected == 2


def test_the_terms_name_the_currency_of_the_threshold(tiers, base_rule):
    bonus_rule("CHF", name_en="50 bonus points from 100 CHF")
    with translation.override("en"):
        promotion = program_terms()["promotions"][0]
    assert "purchases of at least 100.00 CHF" in promotion.conditions


def test_a_rule_without_a_money_threshold_stays_open_to_both_currencies(member, partner, base_rule):
    """Rules without a money condition (a weekend multiplier, a points bonus) stay currency-free."""
    factories.EarningRuleFactory(name_de="Bonus", effect="bonus", value=10)
    outcome = purchase_record(member_id=member.pk, partner=partner, order_reference="CH-2", amount=Decimal("5"),
                              currency="CHF")
    assert bonuses(outcome) == ["Bonus"]


def _migration_named(executor, app: str, suffix: str) -> tuple[str, str]:
    return next(key for key in executor.loader.graph.nodes if key[0] == app and key[1].endswith(suffix))


@pytest.mark.django_db(transaction=True)
def test_rules_written_before_get_euros_so_a_chf_purchase_no_longer_meets_them():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    currency_migration = _migration_named(executor, "rewards", "earning_rule_threshold_currency")
    before = executor.loader.graph.node_map[currency_migration].parents
    before = [parent.key for parent in before if parent.key[0] == "rewards"]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        rule_id = old.get_model("rewards", "EarningRule").objects.create(
            name_de="50 Bonuspunkte ab 100 €", effect="bonus", value=50, min_amount=Decimal("100"), currency="",
            priority=30, active=True, stackable=True, weekdays="", channel="", category="", cap_period="").pk
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    assert EarningRule.objects.get(pk=rule_id).currency == "EUR"
    factories.tier_ladder()
    member = factories.enrolled_member()
    factories.EarningRuleFactory(name_de="1 Punkt", effect="base", value=1, priority=1)
    outcome = purchase_record(member_id=member.pk, partner=factories.PartnerFactory(), order_reference="CH-3",
                              amount=Decimal("120"), currency="CHF")
    assert bonuses(outcome) == []
