"""Support's limits on points booked by hand: per entry (LOYALTY_SUPPORT_ADJUST_LIMIT) and per
staff member and day in Europe/Berlin (LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT), checked by the
service under a lock on the staff user; administrators have neither."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from feedback import services as feedback_services
from rewards.adjustments import points_adjust_by_staff, staff_points_booked_today
from rewards.errors import AdjustmentTooLarge, DailyAdjustmentLimitReached
from rewards.ledger import points_credit
from rewards.models import PointEntry
from tests import factories
from tests.rewards.test_ledger_concurrency import run_in_threads

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def limits(settings):
    settings.LOYALTY_SUPPORT_ADJUST_LIMIT = 500
    settings.LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT = 800


def _member_with_points(points: int = 1000):
    member = factories.enrolled_member()
    points_credit(member_id=member.pk, points=points, kind=PointEntry.Kind.BONUS, reason="Start", source="test")
    return member


def _adjustments(staff_user) -> list[int]:
    return sorted(PointEntry.objects.filter(kind=PointEntry.Kind.ADJUST, created_by=staff_user)
                  .values_list("points", flat=True))


@pytest.mark.django_db
def test_support_daily_limit_sums_absolute_points_and_refuses_the_entry_beyond_it(limits):
    member = _member_with_points()
    support = factories.staff_in("Support")
    points_adjust_by_staff(member_id=member.pk, points=400, reason="Kulanz", staff_user=support)
    points_adjust_by_staff(member_id=member.pk, points=-300, reason="Korrektur", staff_user=support)
    with pytest.raises(DailyAdjustmentLimitReached) as refused:
        points_adjust_by_staff(member_id=member.pk, points=101, reason="Noch mehr", staff_user=support)
    assert "700" in str(refused.value) and "800" in str(refused.value)
    assert _adjustments(support) == [-300, 400]  # the refused entry wrote nothing
    points_adjust_by_staff(member_id=member.pk, points=100, reason="Bis zur Grenze", staff_user=support)
    assert staff_points_booked_today(staff_user_id=support.pk) == 800


@pytest.mark.django_db
def test_daily_limit_is_per_staff_member(limits):
    member = _member_with_points()
    first, second = factories.staff_in("Support"), factories.staff_in("Support")
    points_adjust_by_staff(member_id=member.pk, points=500, reason="Kulanz", staff_user=first)
    points_adjust_by_staff(member_id=member.pk, points=300, reason="Kulanz", staff_user=first)
    points_adjust_by_staff(member_id=member.pk, points=500, reason="Kulanz", staff_user=second)
    assert staff_points_booked_today(staff_user_id=first.pk) == 800


@pytest.mark.django_db
def test_complaint_goodwill_counts_towards_the_daily_limit(limits):
    member = _member_with_points()
    support = factories.staff_in("Support")
    points_adjust_by_staff(member_id=member.pk, points=500, reason="Kulanz", staff_user=support)
    complaint = factories.ComplaintFactory(member=member)
    with pytest.raises(DailyAdjustmentLimitReached):
        feedback_services.complaint_goodwill_points(complaint_id=complaint.pk, points=400, staff_user=support)
    feedback_services.complaint_goodwill_points(complaint_id=complaint.pk, points=300, staff_user=support)
    assert staff_points_booked_today(staff_user_id=support.pk) == 800


@pytest.mark.django_db
def test_the_day_starts_at_midnight_in_berlin(limits):
    member = _member_with_points()
    support = factories.staff_in("Support")
    entry = points_adjust_by_staff(member_id=member.pk, points=500, reason="Kulanz", staff_user=support)
    booked_at = entry.created_at.astimezone(BERLIN)
    same_day_late = booked_at.replace(hour=23, minute=59)
    next_day_early = (booked_at + timedelta(days=1)).replace(hour=0, minute=1)
    assert staff_points_booked_today(staff_user_id=support.pk, now=same_day_late) == 500
    assert staff_points_booked_today(staff_user_id=support.pk, now=next_day_early) == 0


@pytest.mark.django_db
def test_administrators_have_no_daily_limit(limits):
    member = _member_with_points(3000)
    administrator = factories.staff_in("Administrator")
    for _ in range(3):
        points_adjust_by_staff(member_id=member.pk, points=-900, reason="Großkorrektur", staff_user=administrator)
    assert staff_points_booked_today(staff_user_id=administrator.pk) == 2700


@pytest.mark.django_db
def test_the_per_entry_limit_is_checked_by_the_service_too(limits):
    member = _member_with_points()
    with pytest.raises(AdjustmentTooLarge):
        points_adjust_by_staff(member_id=member.pk, points=-501, reason="Zu viel",
                               staff_user=factories.staff_in("Support"))


@pytest.mark.django_db
def test_console_shows_the_daily_limit_error_and_books_nothing(client, limits):
    member = _member_with_points()
    support = factories.staff_in("Support")
    points_adjust_by_staff(member_id=member.pk, points=500, reason="Kulanz", staff_user=support)
    client.force_login(support)
    response = client.post(reverse("admin:members_member_adjust_points", args=[member.pk]),
                           {"points": "400", "reason": "Noch einmal Kulanz"})
    assert response.status_code == 200  # the form again, with the error
    assert "daily limit is 800 points" in response.content.decode()
    assert _adjustments(support) == [500]


@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_by_one_staff_member_cannot_both_pass_the_daily_limit(limits):
    """Ten adjustments of 300 at the same moment against a daily limit of 800: without the lock
    on the staff user each would read the same day total (0) and all would pass."""
    member = _member_with_points(5000)
    support = factories.staff_in("Support")

    def adjust(index: int) -> None:
        points_adjust_by_staff(member_id=member.pk, points=300, reason=f"Kulanz {index}", staff_user=support)

    outcomes = run_in_threads(10, adjust)
    assert sum(outcome is None for outcome in outcomes) == 2
    assert all(isinstance(outcome, DailyAdjustmentLimitReached) for outcome in outcomes if outcome is not None)
    assert _adjustments(support) == [300, 300]
