"""`seed_bench`, the benchmarks' dataset: it keeps the ledger's invariants, and the bench starts
from the visibility maps autovacuum leaves in production (index-only scans read no heap)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from members.models import Member
from rewards.management.commands.seed_bench import VISIBLE_TABLES
from rewards.models import PointEntry, Purchase

pytestmark = pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction


def test_seed_bench_loads_a_consistent_ledger_with_every_page_all_visible():
    call_command("seed_bench", members=300, stdout=StringIO())

    assert Member.objects.count() == 300
    assert PointEntry.objects.count() == 300 * 20
    assert Purchase.objects.count() == 300 * 4
    output = StringIO()
    call_command("verify_ledger", stdout=output)
    assert "ledger OK: 300 members checked" in output.getvalue()
    with connection.cursor() as cursor:
        for table in VISIBLE_TABLES:
            cursor.execute("SELECT relpages, relallvisible FROM pg_class WHERE oid = %s::regclass", [table])
            pages, visible = cursor.fetchone()
            assert pages > 0 and visible == pages, (table, pages, visible)
