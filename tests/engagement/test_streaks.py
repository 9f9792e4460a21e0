"""The streak rule: Monday-to-Sunday weeks with a purchase, in a row, one missed week forgiven."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from engagement.streaks import member_streak, streak_length, week_of
from rewards.returns import purchase_return

TODAY = date(2026, 12, 3)  # a Thursday
THIS_WEEK = date(2026, 11, 30)


def weeks_ago(*numbers: int) -> set[date]:
    return {THIS_WEEK - timedelta(weeks=n) for n in numbers}


def test_a_week_starts_on_monday_in_local_time():
    assert week_of(date(2026, 12, 6)) == THIS_WEEK  # Sunday
    assert week_of(date(2026, 12, 7)) == date(2026, 12, 7)
    # Sunday 23:30 in Berlin is Sunday 22:30 UTC: still the old week.
    late_sunday = datetime(2026, 12, 6, 23, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert week_of(late_sunday) == THIS_WEEK


def test_consecutive_weeks_make_the_streak():
    assert streak_length(weeks_ago(0, 1, 2), today=TODAY, grace=1) == 3


def test_the_running_week_without_a_purchase_does_not_break_the_streak():
    assert streak_length(weeks_ago(1, 2), today=TODAY, grace=1) == 2


def test_one_missed_week_is_forgiven_but_does_not_count():
    assert streak_length(weeks_ago(0, 2, 3), today=TODAY, grace=1) == 3
    assert streak_length(weeks_ago(2, 3), today=TODAY, grace=1) == 2  # last week missed: this week may still count


def test_two_missed_weeks_end_the_streak():
    assert streak_length(weeks_ago(0, 3, 4), today=TODAY, grace=1) == 1
    assert streak_length(weeks_ago(3, 4), today=TODAY, grace=1) == 0


def test_without_grace_one_missed_week_ends_the_streak():
    assert streak_length(weeks_ago(0, 2, 3), today=TODAY, grace=0) == 1


def test_no_purchases_no_streak():
    assert streak_length(set(), today=TODAY) == 0


@pytest.mark.django_db
def test_member_streak_comes_from_purchases_not_returned_in_full(member, buy):
    now = timezone.now()
    for weeks in (0, 1, 2):
        buy(member, f"MS-{weeks}", occurred_at=now - timedelta(weeks=weeks))
    assert member_streak(member.pk) == 3
    returned = buy(member, "MS-old", occurred_at=now - timedelta(weeks=3))
    assert member_streak(member.pk) == 4
    purchase_return(purchase_id=returned.pk, reference="R", amount=Decimal("20.00"))
    assert member_streak(member.pk) == 3
