"""Historical purchases from a file: matched to members, booked through purchase_record at their date."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from members.merge import member_merge
from members.models import Member
from rewards.models import PointEntry, Purchase
from tests import factories
from tests.import_helpers import csv_bytes, dry_run, errors_by_line, full_import
from transfers.models import ImportJob

HEADER = "Kundennummer;E-Mail;Bestellnummer;Datum;Betrag;Währung;Filiale\n"


@pytest.fixture
def shop(partner, base_rule):
    factories.StoreFactory(partner=partner, code="B01", name="Berlin Mitte")
    return partner


def purchases_file(rows: str) -> bytes:
    return csv_bytes(HEADER + rows, "cp1252")


def test_purchases_are_booked_through_the_ledger_at_their_own_date(tiers, shop):
    anna = factories.enrolled_member(customer_number="K1", email="anna@example.de")
    bert = factories.enrolled_member(email="Bert@Example.de")
    content = purchases_file("K1;;A-1;15.03.2025 14:30;1.234,50;EUR;B01\n"
                             ";bert@example.de;A-2;2025-04-01;42,00;;\n")
    job = full_import(content, kind="purchases", options={"partner_id": shop.pk})
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.counts == {"new": 2, "updated": 0, "unchanged": 0, "skipped": 0, "invalid": 0}
    purchase = Purchase.objects.get(order_reference="A-1")
    assert purchase.member == anna and purchase.amount == Decimal("1234.50") and purchase.store.code == "B01"
    assert timezone.localtime(purchase.occurred_at).replace(tzinfo=None) == datetime(2025, 3, 15, 14, 30)
    entry = PointEntry.objects.get(purchase=purchase)
    assert entry.points == 1234 and entry.created_at == purchase.occurred_at  # booked at the purchase date
    assert Purchase.objects.get(order_reference="A-2").member == bert
    anna.refresh_from_db()
    assert anna.lifetime_spend == Decimal("1234.50") and anna.points_balance == 1234
    call_command("verify_ledger")


def test_importing_the_same_purchases_again_changes_nothing(tiers, shop):
    factories.enrolled_member(customer_number="K1")
    content = purchases_file("K1;;A-1;15.03.2025;10,00;EUR;\n")
    full_import(content, kind="purchases", options={"partner_id": shop.pk})
    again = full_import(content, kind="purchases", options={"partner_id": shop.pk})
    assert again.counts == {"new": 0, "updated": 0, "unchanged": 1, "skipped": 0, "invalid": 0}
    assert Purchase.objects.count() == 1 and PointEntry.objects.count() == 1


def test_invalid_purchase_rows_are_reported(tiers, shop):
    factories.enrolled_member(customer_number="K1")
    other = factories.enrolled_member(customer_number="K2")
    factories.PurchaseFactory(member=other, partner=shop, order_reference="TAKEN")
    blocked = factories.enrolled_member(customer_number="K3")
    Member.objects.filter(pk=blocked.pk).update(status=Member.Status.BLOCKED)
    content = purchases_file(
        "K1;;B-1;01.02.2025;10,00;EUR;\n"
        "K9;;B-2;01.02.2025;10,00;EUR;\n"
        "K1;;B-3;01.02.2099;10,00;EUR;\n"
        "K1;;B-4;01.02.2025;-3,00;EUR;\n"
        "K1;;B-5;01.02.2025;10,00;USD;\n"
        "K1;;B-6;01.02.2025;10,00;EUR;X99\n"
        "K1;;TAKEN;01.02.2025;10,00;EUR;\n"
        "K3;;B-8;01.02.2025;10,00;EUR;\n"
        "K1;;B-1;01.02.2025;10,00;EUR;\n"
        "K1;;;01.02.2025;10,00;EUR;\n"
    )
    job = dry_run(content, kind="purchases", options={"partner_id": shop.pk})
    assert job.counts == {"new": 1, "updated": 0, "unchanged": 0, "skipped": 1, "invalid": 8}
    errors = errors_by_line(job)
    assert errors[3] == [("Kundennummer", "no member has the customer number K9")]
    assert errors[4][0] == ("Datum", "the purchase date is in the future")
    assert errors[5][0][0] == "Betrag"
    assert errors[6] == [("Währung", "unknown currency “USD” (EUR or CHF)")]
    assert errors[7][0][0] == "Filiale"
    assert errors[8] == [("Bestellnummer", "this order reference belongs to another member")]
    assert "blocked" in errors[9][0][1]
    assert job.warnings[-1]["line"] == 10 and "line 2" in job.warnings[-1]["message"]
    assert errors[11] == [("Bestellnummer", "the order reference is missing")]


def test_a_purchase_of_a_merged_member_goes_to_the_survivor(tiers, shop):
    survivor = factories.enrolled_member(customer_number="K1")
    duplicate = factories.enrolled_member(customer_number="K2")
    member_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk)
    full_import(purchases_file("K2;;C-1;01.02.2025;10,00;EUR;\n"), kind="purchases",
                options={"partner_id": shop.pk})
    assert Purchase.objects.get(order_reference="C-1").member == survivor


def test_purchases_need_a_partner(tiers):
    job = dry_run(purchases_file("K1;;A-1;01.02.2025;1,00;EUR;\n"), kind="purchases")
    assert job.status == ImportJob.Status.FAILED and "partner" in job.message
