"""Segment conditions: every whitelisted field compiles to the members it should, groups combine
as OR of ANDs, and anything outside the whitelist is refused before it reaches the ORM."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Q
from django.utils import timezone

from campaigns.errors import InvalidCondition
from campaigns.segments import Condition, compile_conditions, members_from_definition, segment_queryset
from members.models import ConsentRecord, Member
from members.services import consent_record
from tests import factories

NOW = timezone.make_aware(datetime(2026, 6, 15, 12, 0))


def matching(*conditions: Condition) -> set[int]:
    return set(Member.objects.active().filter(compile_conditions(conditions, now=NOW)).values_list("pk", flat=True))


def stats(member: Member, **fields) -> Member:
    Member.objects.filter(pk=member.pk).update(**fields)
    member.refresh_from_db()
    return member


def buy(member, *, days_ago: float, amount="10.00", currency="EUR", store=None, categories=(), returned="0"):
    purchase = factories.PurchaseFactory(member=member, amount=Decimal(amount), currency=currency, store=store,
                                         partner=store.partner if store else factories.PartnerFactory(),
                                         occurred_at=NOW - timedelta(days=days_ago), returned_amount=Decimal(returned))
    for category in categories:
        factories.PurchaseLineFactory(purchase=purchase, category=category, amount=Decimal(amount))
    return purchase


@pytest.fixture
def people(tiers):
    _basic, _silver, gold, platinum = tiers
    anna = factories.enrolled_member(first_name="Anna", country="DE", language="de", birth_date=date(1990, 3, 5))
    ben = factories.enrolled_member(first_name="Ben", country="AT", language="en", birth_date=date(1985, 12, 24))
    cleo = factories.enrolled_member(first_name="Cleo", country="CH", language="de")
    Member.objects.filter(pk=ben.pk).update(tier=gold)
    Member.objects.filter(pk=cleo.pk).update(tier=platinum)
    return {"anna": anna, "ben": ben, "cleo": cleo}


# --- Member columns -------------------------------------------------------------------------------

def test_tier_by_name_rank_and_at_least(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    assert matching(Condition("tier", "in", "Gold,platinum")) == {ben.pk, cleo.pk}
    assert matching(Condition("tier", "in", "0")) == {anna.pk}
    assert matching(Condition("tier", "not_in", "Gold")) == {anna.pk, cleo.pk}
    assert matching(Condition("tier", "gte", "Gold")) == {ben.pk, cleo.pk}
    assert matching(Condition("tier", "lte", "Silber")) == {anna.pk}


def test_points_balance_comparisons_and_ranges(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    stats(anna, points_balance=100)
    stats(ben, points_balance=500)
    stats(cleo, points_balance=1500)
    assert matching(Condition("points_balance", "gte", "500")) == {ben.pk, cleo.pk}
    assert matching(Condition("points_balance", "gt", "500")) == {cleo.pk}
    assert matching(Condition("points_balance", "lt", "500")) == {anna.pk}
    assert matching(Condition("points_balance", "between", "100,500")) == {anna.pk, ben.pk}
    assert matching(Condition("points_balance", "eq", "500")) == {ben.pk}
    assert matching(Condition("points_balance", "ne", "500")) == {anna.pk, cleo.pk}


def test_recency_in_days_since_the_last_purchase(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    stats(anna, last_purchase_at=NOW - timedelta(days=3))
    stats(ben, last_purchase_at=NOW - timedelta(days=100))
    assert matching(Condition("days_since_purchase", "lte", "30")) == {anna.pk}
    assert matching(Condition("days_since_purchase", "gte", "90")) == {ben.pk}  # never-buyers have no recency
    assert matching(Condition("days_since_purchase", "between", "2,5")) == {anna.pk}
    assert matching(Condition("days_since_purchase", "eq", "3")) == {anna.pk}
    assert matching(Condition("has_purchased", "no")) == {cleo.pk}
    assert matching(Condition("has_purchased", "yes")) == {anna.pk, ben.pk}


def test_frequency_spend_and_average_order_from_the_twelve_month_columns(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    stats(anna, purchases_12m=2, spend_12m=Decimal("40.00"), lifetime_spend=Decimal("900"))
    stats(ben, purchases_12m=10, spend_12m=Decimal("150.00"), lifetime_spend=Decimal("150"))
    assert matching(Condition("purchases", "gte", "5")) == {ben.pk}
    assert matching(Condition("purchases", "lte", "2")) == {anna.pk, cleo.pk}
    assert matching(Condition("spend", "gte", "100")) == {ben.pk}
    assert matching(Condition("spend", "between", "10,50")) == {anna.pk}
    # average order: Anna 20.00, Ben 15.00, Cleo never bought (no average at all)
    assert matching(Condition("average_order", "gte", "18")) == {anna.pk}
    assert matching(Condition("average_order", "lt", "18")) == {ben.pk}
    assert matching(Condition("average_order", "eq", "15")) == {ben.pk}
    assert matching(Condition("average_order", "between", "14,21")) == {anna.pk, ben.pk}
    assert matching(Condition("lifetime_spend", "gt", "500")) == {anna.pk}


def test_frequency_in_a_period_counts_purchases_and_includes_members_without_any(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    for days_ago in (1, 5, 20):
        buy(anna, days_ago=days_ago)
    buy(ben, days_ago=2)
    buy(ben, days_ago=60)  # outside a 30-day period
    assert matching(Condition("purchases", "gte", "2", days=30)) == {anna.pk}
    assert matching(Condition("purchases", "eq", "1", days=30)) == {ben.pk}
    assert matching(Condition("purchases", "lte", "1", days=30)) == {ben.pk, cleo.pk}
    assert matching(Condition("purchases", "eq", "0", days=30)) == {cleo.pk}
    assert matching(Condition("purchases", "gte", "2", days=90)) == {anna.pk, ben.pk}


def test_spend_in_a_period_is_net_of_returns_and_in_euro(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    buy(anna, days_ago=3, amount="100.00", returned="40.00")  # 60 EUR
    buy(ben, days_ago=3, amount="100.00", currency="CHF")  # 106 EUR at the configured rate
    assert matching(Condition("spend", "gte", "100", days=30)) == {ben.pk}
    assert matching(Condition("spend", "between", "50,70", days=30)) == {anna.pk}
    assert matching(Condition("spend", "lt", "10", days=30)) == {cleo.pk}


def test_average_order_in_a_period(people):
    anna, ben = people["anna"], people["ben"]
    buy(anna, days_ago=3, amount="10.00")
    buy(anna, days_ago=4, amount="30.00")  # average 20
    buy(ben, days_ago=3, amount="80.00")
    buy(ben, days_ago=200, amount="1.00")  # outside the period
    assert matching(Condition("average_order", "gte", "50", days=30)) == {ben.pk}
    assert matching(Condition("average_order", "eq", "20", days=30)) == {anna.pk}
    assert matching(Condition("average_order", "lt", "100", days=30)) == {anna.pk, ben.pk}  # not Cleo: no orders


def test_product_categories_bought_in_a_period_ignore_case(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    buy(anna, days_ago=5, categories=["Kaffee"])
    buy(ben, days_ago=5, categories=["wein"])
    buy(cleo, days_ago=400, categories=["Kaffee"])
    assert matching(Condition("category", "in", "kaffee")) == {anna.pk}
    assert matching(Condition("category", "in", "Kaffee,Wein")) == {anna.pk, ben.pk}
    assert matching(Condition("category", "in", "Kaffee", days=500)) == {anna.pk, cleo.pk}
    assert matching(Condition("category", "not_in", "Kaffee")) == {ben.pk, cleo.pk}


def test_store_visited_in_a_period(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    berlin = factories.StoreFactory(code="BER-01")
    vienna = factories.StoreFactory(code="VIE-01")
    buy(anna, days_ago=5, store=berlin)
    buy(ben, days_ago=5, store=vienna)
    buy(cleo, days_ago=100, store=berlin)
    assert matching(Condition("store", "in", "BER-01")) == {anna.pk, cleo.pk}
    assert matching(Condition("store", "in", "BER-01", days=30)) == {anna.pk}
    assert matching(Condition("store", "not_in", "BER-01", days=30)) == {ben.pk, cleo.pk}


def test_country_language_and_birthday_month(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    assert matching(Condition("country", "in", "de,at")) == {anna.pk, ben.pk}
    assert matching(Condition("country", "not_in", "DE")) == {ben.pk, cleo.pk}
    assert matching(Condition("language", "in", "en")) == {ben.pk}
    assert matching(Condition("language", "not_in", "en")) == {anna.pk, cleo.pk}
    assert matching(Condition("birthday_month", "in", "3,4")) == {anna.pk}
    assert matching(Condition("birthday_month", "not_in", "3")) == {ben.pk}  # Cleo has no birthday on file


def test_join_date_and_days_since_joining(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    stats(anna, joined_at=timezone.make_aware(datetime(2024, 1, 10, 9)))
    stats(ben, joined_at=timezone.make_aware(datetime(2026, 6, 1, 9)))
    stats(cleo, joined_at=NOW - timedelta(days=2))
    assert matching(Condition("joined_at", "before", "2025-01-01")) == {anna.pk}
    assert matching(Condition("joined_at", "after", "2026-06-01")) == {ben.pk, cleo.pk}
    assert matching(Condition("joined_at", "between", "2024-01-10,2026-06-01")) == {anna.pk, ben.pk}
    assert matching(Condition("days_since_joined", "lte", "7")) == {cleo.pk}
    assert matching(Condition("days_since_joined", "gt", "365")) == {anna.pk}


def test_tags_any_none_and_all(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    vip, wine = factories.TagFactory(name="VIP"), factories.TagFactory(name="Weinclub")
    anna.tags.add(vip, wine)
    ben.tags.add(wine)
    assert matching(Condition("tags", "in", "VIP,Weinclub")) == {anna.pk, ben.pk}
    assert matching(Condition("tags", "all", "VIP,Weinclub")) == {anna.pk}
    assert matching(Condition("tags", "not_in", "VIP")) == {ben.pk, cleo.pk}


def test_consent_is_the_latest_record_and_email_needs_the_double_opt_in(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    factories.ConsentRecordFactory(member=anna, purpose="email")  # confirmed
    consent_record(member=ben, purpose="email", granted=True, source="portal")  # waiting for the opt-in
    factories.ConsentRecordFactory(member=cleo, purpose="email", created_at=NOW - timedelta(days=10))
    consent_record(member=cleo, purpose="email", granted=False, source="unsubscribe")  # withdrawn since
    factories.ConsentRecordFactory(member=ben, purpose="sms", confirmed_at=None)
    assert matching(Condition("consent", "given", "email")) == {anna.pk}
    assert matching(Condition("consent", "not_given", "email")) == {ben.pk, cleo.pk}
    assert matching(Condition("consent", "given", "sms")) == {ben.pk}


def test_consent_records_at_the_same_moment_are_ordered_by_id(people):
    anna = people["anna"]
    moment = NOW - timedelta(days=1)
    factories.ConsentRecordFactory(member=anna, purpose="sms", created_at=moment)
    factories.ConsentRecordFactory(member=anna, purpose="sms", granted=False, created_at=moment)
    assert anna.pk not in matching(Condition("consent", "given", "sms"))


# --- Combining, scope, safety ---------------------------------------------------------------------

def test_groups_are_or_of_and(people):
    anna, ben, cleo = people["anna"], people["ben"], people["cleo"]
    conditions = [
        Condition("country", "in", "DE", group=1), Condition("language", "in", "de", group=1),
        Condition("tier", "in", "Platin", group=2),
    ]
    assert matching(*conditions) == {anna.pk, cleo.pk}
    assert matching(Condition("country", "in", "DE", group=1), Condition("language", "in", "en", group=1)) == set()
    assert matching() == {anna.pk, ben.pk, cleo.pk}  # no conditions: every active member


def test_a_segment_holds_only_active_members(people):
    anna, ben = people["anna"], people["ben"]
    Member.objects.filter(pk=ben.pk).update(status=Member.Status.BLOCKED)
    condition = factories.SegmentConditionFactory(field="country", operator="in", value="DE,AT")
    segment = condition.segment
    assert set(segment_queryset(segment, now=NOW).values_list("pk", flat=True)) == {anna.pk}
    assert set(segment.members(now=NOW).values_list("pk", flat=True)) == {anna.pk}


@pytest.mark.parametrize(("condition", "message"), [
    (Condition("password", "eq", "x"), "unknown field"),
    (Condition("country", "gte", "DE"), "operator"),
    (Condition("points_balance", "gte", "many"), "not a number"),
    (Condition("points_balance", "gte", "-5"), "negative"),
    (Condition("points_balance", "between", "10"), "from,to"),
    (Condition("points_balance", "between", "10,5"), "low to high"),
    (Condition("tier", "in", "Diamant"), "unknown tier"),
    (Condition("tier", "gte", "Gold,Silber"), "one tier"),
    (Condition("country", "in", "Deutschland"), "unknown value"),
    (Condition("language", "in", "fr"), "unknown value"),
    (Condition("birthday_month", "in", "13"), "1 to 12"),
    (Condition("joined_at", "before", "yesterday"), "not a date"),
    (Condition("tags", "in", "nobody-has-this"), "unknown tag"),
    (Condition("store", "in", "NOPE"), "unknown store"),
    (Condition("consent", "given", "postcard"), "purpose"),
    (Condition("country", "in", "DE", days=30), "no period"),
    (Condition("purchases", "gte", "1", days=0), "period"),
    (Condition("category", "in", " , "), "at least one value"),
])
def test_conditions_outside_the_whitelist_are_refused(tiers, condition, message):
    with pytest.raises(InvalidCondition, match=message):
        compile_conditions([condition], now=NOW)


def test_values_are_parameters_never_sql(people):
    anna = people["anna"]
    buy(anna, days_ago=1, categories=["Kaffee"])
    hostile = "Kaffee' OR 1=1; DROP TABLE members_member; --"
    assert matching(Condition("category", "in", hostile)) == set()
    query = Member.objects.filter(compile_conditions([Condition("category", "in", hostile)], now=NOW)).query
    sql, params = query.sql_with_params()
    assert "DROP TABLE" not in sql and any("DROP TABLE" in str(param) for param in params)
    assert Member.objects.count() == 3


def test_a_json_definition_compiles_the_same_way(people):
    anna, cleo = people["anna"], people["cleo"]
    definition = [{"field": "country", "operator": "in", "value": "DE", "group": 1},
                  {"field": "tier", "operator": "gte", "value": "Platin", "group": 2}]
    assert set(members_from_definition(definition, now=NOW).values_list("pk", flat=True)) == {anna.pk, cleo.pk}
    with pytest.raises(InvalidCondition):
        members_from_definition([{"field": "country", "operator": "in", "value": "DE", "sql": "1=1"}])


def test_no_conditions_compile_to_an_empty_q():
    assert compile_conditions([], now=NOW) == Q()


def test_consent_purpose_defaults_to_email(people):
    anna = people["anna"]
    factories.ConsentRecordFactory(member=anna, purpose=ConsentRecord.Purpose.EMAIL)
    assert matching(Condition("consent", "given", "")) == {anna.pk}
