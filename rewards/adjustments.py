"""Points booked by hand in the console: staff adjustments within support's limits.

Complaint goodwill (feedback) counts against the same daily limit: its entries carry
`GOODWILL_SOURCE`, defined here so that the ledger's side knows it without importing feedback.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import Abs
from django.utils import timezone

from rewards.errors import AdjustmentTooLarge, DailyAdjustmentLimitReached

from .ledger import points_adjust
from .models import PointEntry

GOODWILL_SOURCE = "complaint"  # feedback books complaint goodwill under it


# --- Support's limits on points booked by hand --------------------------------------------

def _programme_day_start(now: datetime) -> datetime:
    """Midnight starting `now`'s day on the programme's calendar (Europe/Berlin)."""
    return now.astimezone(ZoneInfo(settings.TIME_ZONE)).replace(hour=0, minute=0, second=0, microsecond=0)


def staff_points_booked_today(*, staff_user_id: int, now: datetime | None = None) -> int:
    """Absolute points the staff user booked by hand since midnight (Europe/Berlin):
    adjustments and complaint goodwill, the two ways support hands out points."""
    since = _programme_day_start(now or timezone.now())
    entries = PointEntry.objects.filter(created_by_id=staff_user_id, created_at__gte=since).filter(
        Q(kind=PointEntry.Kind.ADJUST) | Q(source=GOODWILL_SOURCE))
    return entries.aggregate(total=Sum(Abs("points")))["total"] or 0


def staff_points_limits_check(*, staff_user: AbstractBaseUser | None, points: int) -> None:
    """Support may book at most LOYALTY_SUPPORT_ADJUST_LIMIT points per entry and
    LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT (absolute, summed) per day; administrators
    (`members.adjust_points_unlimited`) and system jobs (no staff user) have no limit.

    Call it inside the transaction that books the entry, before the member is locked (lock
    order: staff user, then member). The staff user's row is locked so that two adjustments by
    the same person in parallel are checked one after the other: without the lock both would
    read the same day total and both pass."""
    if staff_user is None or staff_user.has_perm("members.adjust_points_unlimited"):
        return
    limit = settings.LOYALTY_SUPPORT_ADJUST_LIMIT
    if abs(points) > limit:
        raise AdjustmentTooLarge(limit=limit)
    daily_limit = settings.LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT
    if not daily_limit:
        return  # 0: no daily limit
    list(get_user_model().objects.select_for_update().filter(pk=staff_user.pk).values_list("pk", flat=True))
    booked = staff_points_booked_today(staff_user_id=staff_user.pk)
    if booked + abs(points) > daily_limit:
        raise DailyAdjustmentLimitReached(limit=daily_limit, booked=booked)


@transaction.atomic
def points_adjust_by_staff(*, member_id: int, points: int, reason: str, staff_user: AbstractBaseUser) -> PointEntry:
    """A correction from the console: `points_adjust` within support's limits."""
    staff_points_limits_check(staff_user=staff_user, points=points)
    return points_adjust(member_id=member_id, points=points, reason=reason, staff_user=staff_user)
