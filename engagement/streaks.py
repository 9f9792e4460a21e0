"""Streaks: weeks in a row with a purchase.

The rule (shown to members on the challenges page):

- A week runs Monday to Sunday, local time (settings.TIME_ZONE). It *counts* when the member
  made at least one purchase in it that was not returned in full.
- The streak is the number of counted weeks in a row up to now. The running week never breaks
  it: until Sunday night it either counts (and adds one) or is still open.
- Grace: up to `LOYALTY_STREAK_GRACE_WEEKS` (default 1) missed weeks in a row are forgiven when a
  counted week follows them (or the running week, which still may). A forgiven week adds
  nothing to the streak; two missed weeks in a row (with the default) end it.

`streak_length` is the pure rule; the member's streak on the dashboard and the progress of
streak challenges both use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.db.models.functions import TruncDate
from django.utils import timezone

from rewards.models import Purchase

WEEK = timedelta(days=7)
# Weeks looked back for the dashboard streak: a longer streak shows as this many (a year).
LOOK_BACK_WEEKS = 53


def grace_weeks() -> int:
    return max(0, int(getattr(settings, "LOYALTY_STREAK_GRACE_WEEKS", 1)))


def week_of(at: datetime | date) -> date:
    """The Monday of the local week of `at`."""
    day = timezone.localdate(at) if isinstance(at, datetime) else at
    return day - timedelta(days=day.weekday())


def streak_length(counted: Iterable[date], *, today: date | None = None, grace: int | None = None) -> int:
    """The streak in weeks, from the Mondays of the counted weeks (see the module's rule)."""
    weeks = set(counted)
    if not weeks:
        return 0
    grace = grace_weeks() if grace is None else grace
    week = week_of(today or timezone.localdate())
    if week not in weeks:
        week -= WEEK  # the running week is still open: it neither counts nor breaks the streak yet
    earliest = min(weeks)
    streak = missed = 0
    while week >= earliest:
        if week in weeks:
            streak += 1
            missed = 0
        else:
            missed += 1
            if missed > grace:
                break
        week -= WEEK
    return streak


def member_streak(member_id: int, *, today: date | None = None) -> int:
    """The member's current streak from their purchases (one query)."""
    today = today or timezone.localdate()
    since = timezone.make_aware(datetime.combine(week_of(today) - LOOK_BACK_WEEKS * WEEK, datetime.min.time()))
    days = (Purchase.objects.filter(member_id=member_id, occurred_at__gte=since)
            .exclude(returned_amount=F("amount"))
            .annotate(day=TruncDate("occurred_at")).values_list("day", flat=True).distinct())
    return streak_length({week_of(day) for day in days}, today=today)
