"""The earn statement's function in the database is the source in rewards.ledger_sql: a change of
the source needs a migration that creates it again (copying the new text)."""

from __future__ import annotations

from django.db import connection

from rewards.ledger_sql import EARN_FUNCTION, EARN_FUNCTION_SQL


def test_the_database_runs_the_earn_function_of_the_source(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [EARN_FUNCTION])
        (deployed,) = cursor.fetchone()
    body = EARN_FUNCTION_SQL.split("$earn$")[1]
    assert deployed == body


# --- The buyer flags: a function installed after migrate, or the SELECT itself -------------------

def _earn_answer(member, partner, reference: str):
    from decimal import Decimal

    from django.utils import timezone

    from rewards.ledger import purchase_earn_statement
    from rewards.purchases import LineData, earn_plan

    amount = Decimal("10.00")
    plan = earn_plan(member_id=member.pk, partner=partner, order_reference=reference, amount=amount,
                     currency="EUR", occurred_at=timezone.now(), store=None, channel="store",
                     lines=[LineData(amount=amount)], booked_at=None)
    return purchase_earn_statement(plan.request)


def _always_true():
    from django.db.models import Exists, OuterRef

    from members.models import Member

    return Exists(Member.objects.filter(pk=OuterRef("pk")))


def test_the_earn_reads_the_buyer_flags_through_the_function_installed_after_migrate(member, partner):
    from django.test.utils import CaptureQueriesContext

    from rewards import ledger

    names = tuple(ledger.buyer_annotations)
    assert names  # referrals and offers register theirs
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [ledger.BUYER_FLAGS_FUNCTION])
        assert cursor.fetchone()[0] == ledger._flags_function_body(names)
    with CaptureQueriesContext(connection) as captured:
        answer = _earn_answer(member, partner, "FLAGS-1")
    assert answer.status == "created" and answer.flags == dict.fromkeys(names, False)
    earn_sql = next(query["sql"] for query in captured if EARN_FUNCTION in query["sql"])
    assert f"'{ledger.BUYER_FLAGS_FUNCTION}'" in earn_sql  # not the flags' SELECT, planned per call


def test_flags_the_installed_function_does_not_know_are_read_by_their_select_until_the_next_migrate(
        member, partner, monkeypatch):
    from rewards import ledger

    monkeypatch.setattr(ledger, "_flags_function_matches", {})
    monkeypatch.setitem(ledger.buyer_annotations, "always_true", _always_true)
    names = tuple(ledger.buyer_annotations)
    assert ledger._flags_argument(names).startswith("SELECT ARRAY[")
    assert _earn_answer(member, partner, "FLAGS-2").flags["always_true"] is True

    ledger.buyer_flags_install()  # what the next migrate does (rolled back with the test's transaction)
    assert ledger._flags_argument(names) == ledger.BUYER_FLAGS_FUNCTION
    answer = _earn_answer(member, partner, "FLAGS-3")
    assert answer.status == "created" and answer.flags["always_true"] is True
