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
