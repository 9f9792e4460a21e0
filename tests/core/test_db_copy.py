"""core.db.copy_data / insert_copy_data: rows formatted for COPY ahead of sending them (#24: the
member import formats in its main thread while its writer's thread sends the chunk before)."""

from __future__ import annotations

from django.utils import timezone

from core import db as core_db
from members.models import ConsentRecord, TierHistory
from tests import factories

FIELDS = ("member_id", "to_tier_id", "cause", "reason", "created_by_id", "created_at")


def _history(member_id: int, tier_id: int, reason: str, at) -> list[tuple]:
    return [(member_id, tier_id, TierHistory.Cause.ENROLMENT, reason, None, at)]


def test_rows_formatted_first_and_sent_later_are_the_rows_insert_rows_writes(tiers):
    member, now = factories.enrolled_member(), timezone.now()
    tier_id = tiers[1].pk
    core_db.insert_rows(TierHistory, FIELDS, _history(member.pk, tier_id, "direct", now), now=now)
    copied = core_db.copy_data(TierHistory, FIELDS, _history(member.pk, tier_id, "ahead", now), now=now)
    assert copied.rows == 1
    assert not TierHistory.objects.filter(reason="ahead").exists()  # formatted, not sent
    core_db.insert_copy_data(copied)
    direct, ahead = (TierHistory.objects.filter(reason=reason).values().get() for reason in ("direct", "ahead"))
    assert {**direct, "id": None, "reason": None} == {**ahead, "id": None, "reason": None}


def test_no_rows_are_not_sent(db):
    empty = core_db.copy_data(ConsentRecord, ("member_id", "purpose", "granted", "source"), [], now=timezone.now())
    assert empty.rows == 0
    core_db.insert_copy_data(empty)
    core_db.insert_copy_data(None)
    assert not ConsentRecord.objects.exists()
