"""The indexes of the rows a member import writes per member (#24): none that another index covers
or that holds only empty values, and the look-ups that need one still use one."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tests import factories


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


def _plan(sql: str, params: list) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: ask which index fits
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_tier_history_indexes_previous_tier_and_staff_only_where_set(db):
    indexes = _indexes("members_tierhistory")
    assert "WHERE (from_tier_id IS NOT NULL)" in indexes["tier_history_from_tier"]
    assert "WHERE (created_by_id IS NOT NULL)" in indexes["tier_history_staff"]
    assert not [name for name, definition in indexes.items()
                if ("(from_tier_id)" in definition or "(created_by_id)" in definition) and "WHERE" not in definition]


def test_consent_records_have_one_token_index_and_no_member_index_besides_consent_latest(db):
    indexes = _indexes("members_consentrecord")
    assert [name for name, definition in indexes.items() if "confirmation_token" in definition] == ["consent_token"]
    assert [name for name, definition in indexes.items() if "(member_id" in definition] == ["consent_latest"]
    assert "WHERE (created_by_id IS NOT NULL)" in indexes["consent_staff"]


def test_member_tags_are_indexed_by_member_only_through_the_unique_pair(db):
    indexes = _indexes("members_member_tags")
    assert [name for name, definition in indexes.items() if "(member_id" in definition] == [
        "members_member_tags_member_id_tag_id_3d7876ba_uniq"]


@pytest.mark.parametrize(("sql", "index"), [
    ("SELECT * FROM members_consentrecord WHERE confirmation_token = %s AND confirmed_at IS NULL",
     "consent_token"),
    ("SELECT * FROM members_consentrecord WHERE member_id = %s", "consent_latest"),
    ("SELECT * FROM members_tierhistory WHERE from_tier_id = %s", "tier_history_from_tier"),
    ("SELECT * FROM members_tierhistory WHERE created_by_id = %s", "tier_history_staff"),
    ("SELECT * FROM members_consentrecord WHERE created_by_id = %s", "consent_staff"),
    ("SELECT * FROM members_member_tags WHERE member_id = %s", "members_member_tags_member_id_tag_id_3d7876ba_uniq"),
])
def test_the_lookups_of_the_console_and_of_deletes_still_use_an_index(db, sql, index):
    # A token for the first, ids for the rest (deleting a tier or a user looks up who points to it).
    params = ["abc"] if "token" in sql else [factories.enrolled_member().pk]
    assert index in _plan(sql, params)
