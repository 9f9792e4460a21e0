"""Simulating an earning rule: on past purchases, whatever its own dates, and before it is saved."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from rewards.models import EarningRule, PointEntry, Purchase
from rewards.purchases import LineData, purchase_record
from rewards.simulation import earning_rule_simulate
from tests import factories


@pytest.fixture
def past_purchases(tiers, partner, base_rule):
    """Five coffee purchases of 40 EUR, 2 to 6 days ago, by two members; two in store A."""
    store_a = factories.StoreFactory(partner=partner)
    store_b = factories.StoreFactory(partner=partner)
    buyers = [factories.enrolled_member(), factories.enrolled_member()]
    for index in range(5):
        purchase_record(member_id=buyers[index % 2].pk, partner=partner, order_reference=f"P-{index}",
                        amount=Decimal("40"), occurred_at=timezone.now() - timedelta(days=2 + index),
                        store=store_a if index < 2 else store_b,
                        lines=[LineData(amount=Decimal("40"), category="Kaffee")])
    return {"store_a": store_a, "store_b": store_b, "buyers": buyers}


def coffee_rule(**dates) -> EarningRule:
    return factories.EarningRuleFactory(name_de="Doppelt auf Kaffee", effect="multiplier", value=2,
                                        category="Kaffee", active=False, **dates)


def test_a_rule_planned_in_the_future_simulates_like_the_same_rule_dated_in_the_past(past_purchases):
    now = timezone.now()
    future = coffee_rule(valid_from=now + timedelta(days=10), valid_until=now + timedelta(days=20))
    past = coffee_rule(valid_from=now - timedelta(days=30), valid_until=now - timedelta(days=1))

    planned = earning_rule_simulate(rule=future, days=14)
    dated_in_the_past = earning_rule_simulate(rule=past, days=14)

    assert planned.purchases_seen == dated_in_the_past.purchases_seen == 5
    assert planned.purchases_affected == dated_in_the_past.purchases_affected == 5
    assert planned.members_affected == dated_in_the_past.members_affected == 2
    assert planned.extra_points == dated_in_the_past.extra_points == 5 * 40  # (2 - 1) × 40 per purchase
    assert planned.window_ignored
    future.refresh_from_db()
    assert future.valid_from > now  # the rule itself keeps its dates


def test_the_change_page_says_the_rule_was_simulated_as_if_active(client, past_purchases):
    rule = coffee_rule(valid_from=timezone.now() + timedelta(days=10))
    client.force_login(factories.staff_in("Marketing"))
    response = client.get(reverse("admin:rewards_earningrule_change", args=[rule.pk]), {"simulate_days": 14})
    assert response.context["simulation"].extra_points == 5 * 40
    assert 'data-testid="simulation-window"' in response.content.decode()


def add_form_data(**overrides) -> dict:
    data = {"name_de": "Doppelt auf Kaffee in Filiale A", "name_en": "", "priority": "100", "effect": "multiplier",
            "value": "2", "stackable": "on", "valid_from_0": "", "valid_from_1": "", "valid_until_0": "",
            "valid_until_1": "", "weekdays": "", "currency": "", "min_amount": "", "channel": "",
            "category": "Kaffee", "tier": "", "cap_points": "", "cap_period": "", "simulate_days": "14",
            "_simulate": "1"}
    return {**data, **overrides}


def test_simulating_from_the_add_form_shows_the_figures_and_saves_nothing(client, past_purchases):
    client.force_login(factories.staff_in("Marketing"))
    counts = (EarningRule.objects.count(), PointEntry.objects.count(), Purchase.objects.count())

    response = client.post(reverse("admin:rewards_earningrule_add"),
                           add_form_data(stores=[past_purchases["store_a"].pk]))

    assert response.status_code == 200
    simulation = response.context["simulation"]
    assert simulation.days == 14
    assert simulation.purchases_seen == 5
    assert simulation.purchases_affected == 2  # only store A's purchases: the stores come from the form
    assert simulation.members_affected == 2
    assert simulation.extra_points == 2 * 40
    page = response.content.decode()
    assert 'data-testid="simulation"' in page and "Doppelt auf Kaffee in Filiale A" in page  # the form, as posted
    assert 'name="_simulate"' in page
    assert (EarningRule.objects.count(), PointEntry.objects.count(), Purchase.objects.count()) == counts


def test_simulating_an_invalid_add_form_shows_its_errors_and_saves_nothing(client, past_purchases):
    client.force_login(factories.staff_in("Marketing"))
    count = EarningRule.objects.count()
    response = client.post(reverse("admin:rewards_earningrule_add"), add_form_data(value="0"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["value"]
    assert response.context["simulation"] is None
    assert EarningRule.objects.count() == count


def test_saving_from_the_add_form_still_saves(client, past_purchases):
    client.force_login(factories.staff_in("Marketing"))
    data = add_form_data(stores=[past_purchases["store_a"].pk])
    del data["_simulate"]
    response = client.post(reverse("admin:rewards_earningrule_add"), {**data, "_save": "1"})
    assert response.status_code == 302
    rule = EarningRule.objects.get(name_de="Doppelt auf Kaffee in Filiale A")
    assert list(rule.stores.all()) == [past_purchases["store_a"]]
