"""The member table's storage settings (members/migrations/0025_member_row_storage.py)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_member_table_leaves_room_for_hot_updates_and_is_vacuumed_early():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = 'members_member'::regclass")
        options = set(cursor.fetchone()[0])
    assert {"fillfactor=85", "autovacuum_vacuum_scale_factor=0.01",
            "autovacuum_vacuum_insert_scale_factor=0.01"} <= options
