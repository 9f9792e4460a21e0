"""The segment rollups (rewards.MemberMonth, rewards.MemberCategory) are kept by triggers on
purchases and lines: after every way purchases are written (the earn service, returns, member
merges, purchase imports, set-based inserts, deletes) they equal a GROUP BY over the purchases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from members.merge import member_merge
from rewards.models import Purchase, PurchaseLine
from rewards.purchases import LineData, purchase_record
from rewards.returns import purchase_return
from tests import factories
from tests.import_helpers import csv_bytes, full_import


def rows(sql: str) -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return set(cursor.fetchall())


def months_match() -> set[tuple]:
    rollup = rows("SELECT member_id, month, currency, purchases, net_amount FROM rewards_membermonth")
    reference = rows("""
        SELECT member_id, (date_trunc('month', occurred_at AT TIME ZONE 'UTC'))::date, currency, count(*)::int,
               sum(amount - returned_amount)
        FROM rewards_purchase GROUP BY 1, 2, 3""")
    assert rollup == reference
    return rollup


def categories_match() -> set[tuple]:
    rollup = rows("SELECT member_id, category, last_bought_at FROM rewards_membercategory")
    reference = rows("""
        SELECT p.member_id, upper(l.category), max(p.occurred_at)
        FROM rewards_purchase p JOIN rewards_purchaseline l ON l.purchase_id = p.id
        WHERE l.category <> '' GROUP BY 1, 2""")
    assert rollup == reference
    return rollup


def both_match() -> None:
    months_match()
    categories_match()


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def buyers(tiers, partner, base_rule):
    return factories.enrolled_member(), factories.enrolled_member()


def test_purchases_and_returns_keep_the_monthly_rollup(buyers, partner):
    anna, _bert = buyers
    first = purchase_record(member_id=anna.pk, partner=partner, order_reference="R-1", amount=Decimal("40.00"),
                            occurred_at=at(2026, 3, 31, 23, 59), lines=[
                                LineData(amount=Decimal("30.00"), category="Kaffee"),
                                LineData(amount=Decimal("10.00"), category="wein")]).purchase
    purchase_record(member_id=anna.pk, partner=partner, order_reference="R-2", amount=Decimal("12.50"),
                    currency="CHF", occurred_at=at(2026, 4, 1, 0, 0))
    purchase_record(member_id=anna.pk, partner=partner, order_reference="R-3", amount=Decimal("7.00"),
                    occurred_at=at(2026, 4, 20, 10), lines=[LineData(amount=Decimal("7.00"), category="KAFFEE")])
    assert months_match() == {
        (anna.pk, at(2026, 3, 1).date(), "EUR", 1, Decimal("40.00")),
        (anna.pk, at(2026, 4, 1).date(), "CHF", 1, Decimal("12.50")),
        (anna.pk, at(2026, 4, 1).date(), "EUR", 1, Decimal("7.00")),
    }
    assert categories_match() == {(anna.pk, "KAFFEE", at(2026, 4, 20, 10)), (anna.pk, "WEIN", at(2026, 3, 31, 23, 59))}

    purchase_return(purchase_id=first.pk, reference="RET-1", amount=Decimal("15.00"))
    purchase_return(purchase_id=first.pk, reference="RET-2", amount=Decimal("25.00"))  # the rest
    assert (anna.pk, at(2026, 3, 1).date(), "EUR", 1, Decimal("0.00")) in months_match()
    categories_match()


def test_a_merge_moves_the_rollups_to_the_survivor(buyers, partner):
    anna, bert = buyers
    purchase_record(member_id=anna.pk, partner=partner, order_reference="M-1", amount=Decimal("20.00"),
                    occurred_at=at(2026, 5, 3), lines=[LineData(amount=Decimal("20.00"), category="Wein")])
    purchase_record(member_id=bert.pk, partner=partner, order_reference="M-2", amount=Decimal("5.00"),
                    occurred_at=at(2026, 5, 9), lines=[LineData(amount=Decimal("5.00"), category="Wein")])
    purchase_record(member_id=bert.pk, partner=partner, order_reference="M-3", amount=Decimal("8.00"),
                    currency="CHF", occurred_at=at(2026, 2, 1), lines=[LineData(amount=Decimal("8.00"),
                                                                                 category="Käse")])
    member_merge(survivor_id=anna.pk, duplicate_id=bert.pk)
    assert months_match() == {
        (anna.pk, at(2026, 5, 1).date(), "EUR", 2, Decimal("25.00")),
        (anna.pk, at(2026, 2, 1).date(), "CHF", 1, Decimal("8.00")),
    }
    assert categories_match() == {(anna.pk, "WEIN", at(2026, 5, 9)), (anna.pk, "KÄSE", at(2026, 2, 1))}


def test_imported_purchases_are_in_the_rollups(tiers, partner, base_rule):
    factories.StoreFactory(partner=partner, code="B01", name="Berlin Mitte")
    anna = factories.enrolled_member(customer_number="K1")
    content = csv_bytes("Kundennummer;E-Mail;Bestellnummer;Datum;Betrag;Währung;Filiale\n"
                        "K1;;A-1;15.03.2025 14:30;1.234,50;EUR;B01\n"
                        "K1;;A-2;16.03.2025;10,00;CHF;\n"
                        "K1;;A-3;02.04.2025;42,00;;\n", "cp1252")
    job = full_import(content, kind="purchases", options={"partner_id": partner.pk})
    assert job.counts["new"] == 3, job.message
    assert {(month, currency, count) for _member, month, currency, count, _net in months_match()} == {
        (at(2025, 3, 1).date(), "EUR", 1), (at(2025, 3, 1).date(), "CHF", 1), (at(2025, 4, 1).date(), "EUR", 1)}
    assert Purchase.objects.filter(member=anna).count() == 3
    categories_match()


def test_set_based_writes_updates_of_other_columns_and_deletes_keep_the_rollups(buyers, partner):
    anna, bert = buyers
    moment = at(2026, 6, 10, 12)
    Purchase.objects.bulk_create([
        Purchase(member=member, partner=partner, order_reference=f"B-{member.pk}-{number}",
                 amount=Decimal("3.10") * number,
                 currency="CHF" if number % 3 == 0 else "EUR", occurred_at=moment - timedelta(days=11 * number))
        for number in range(1, 25) for member in (anna, bert) if (number + member.pk) % 2 or number < 5
    ][:40])
    purchases = list(Purchase.objects.order_by("pk"))
    PurchaseLine.objects.bulk_create([
        PurchaseLine(purchase=purchase, amount=purchase.amount, category=["Kaffee", "Wein", ""][purchase.pk % 3])
        for purchase in purchases])
    both_match()
    Purchase.objects.update(points_pending=0)  # no rollup column: nothing to do
    Purchase.objects.filter(pk__in=[p.pk for p in purchases[::4]]).update(occurred_at=moment + timedelta(days=40))
    PurchaseLine.objects.filter(purchase__in=purchases[::5]).update(category="Tee")
    both_match()
    PurchaseLine.objects.filter(purchase__in=purchases[:10]).delete()
    Purchase.objects.filter(pk__in=[p.pk for p in purchases[:10]]).delete()
    both_match()
    Purchase.objects.filter(member=bert).update(member=anna)
    both_match()
    assert not rows(f"SELECT 1 FROM rewards_membermonth WHERE member_id = {bert.pk}")
