"""core.db.check_deferred_constraints: the foreign-key checks a transaction queued, run now and
deferred again (imports call it after each chunk, #24)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from core.db import check_deferred_constraints
from members.models import TierHistory
from tests import factories

MISSING_MEMBER = 987_654_321


def _history_of_a_member_that_does_not_exist() -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO members_tierhistory (member_id, cause, reason, created_at) "
                       "VALUES (%s, 'staff', '', now())", [MISSING_MEMBER])


def test_every_deferrable_constraint_is_initially_deferred(db):
    # check_deferred_constraints defers ALL again: right only while no deferrable constraint
    # starts out immediate (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED).
    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint "
                       "WHERE condeferrable AND NOT condeferred")
        assert cursor.fetchall() == []
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgdeferrable AND NOT tginitdeferred")
        assert cursor.fetchall() == []


def test_a_dangling_foreign_key_fails_at_the_check_not_only_at_the_commit(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        _history_of_a_member_that_does_not_exist()
        check_deferred_constraints()
    assert not TierHistory.objects.filter(member_id=MISSING_MEMBER).exists()


def test_after_the_check_foreign_keys_are_deferred_again(db):
    member = factories.enrolled_member()
    with transaction.atomic():
        check_deferred_constraints()
        # Deferred again: a row may point to a member that exists only later in the transaction.
        _history_of_a_member_that_does_not_exist()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE members_tierhistory SET member_id = %s WHERE member_id = %s",
                           [member.pk, MISSING_MEMBER])
        check_deferred_constraints()
    assert TierHistory.objects.filter(member=member, cause="staff").count() == 1
