"""Expiry: credits expire N months after they are booked, debits eat the oldest credits first,
and the set-based job computes what is due without lots:
max(0, credits expiring by T - debits other than expiry) - already expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.db.models import Sum
from django.utils import timezone

from rewards.figures import points_expiring_by
from rewards.ledger import points_debit, points_expire_due
from rewards.models import PointEntry
from rewards.purchases import purchase_record
from rewards.selectors import points_expiring_soon
from tests import factories


@pytest.fixture
def twelve_months(settings):
    settings.LOYALTY_POINTS_EXPIRY_MONTHS = 12


def book(member, partner, amount, reference, at):
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=Decimal(amount),
                           occurred_at=at, booked_at=at).purchase


def balance(member) -> int:
    member.refresh_from_db()
    total = PointEntry.objects.filter(member=member).aggregate(total=Sum("points", default=0))["total"]
    assert member.points_balance == total
    return member.points_balance


def test_worked_example_oldest_points_expire_first(member, partner, base_rule, twelve_months):
    t0 = timezone.now() - relativedelta(years=3)
    month = relativedelta(months=1)
    day = timedelta(days=1)
    book(member, partner, "100", "A", t0)             # lot A: 100, expires t0 + 12 months
    book(member, partner, "50", "B", t0 + 3 * month)  # lot B: 50, expires t0 + 15 months
    points_debit(member_id=member.pk, points=120, reason="Prämie")  # eats A (100) and 20 of B
    assert balance(member) == 30

    # A's date: credits due 100, debits 120: max(0, 100 - 120) - 0 = 0. A was spent.
    assert points_expiring_by(member_id=member.pk, at=t0 + 12 * month) == 0
    assert points_expire_due(now=t0 + 12 * month + day).points == 0
    # B's date: 150 - 120 = 30, the 30 left of B.
    assert points_expiring_by(member_id=member.pk, at=t0 + 15 * month) == 30
    report = points_expire_due(now=t0 + 15 * month + day)
    assert (report.members, report.points) == (1, 30)
    assert balance(member) == 0

    book(member, partner, "80", "C", t0 + 16 * month)  # lot C: 80, expires t0 + 28 months
    book(member, partner, "40", "D", t0 + 20 * month)  # lot D: 40, expires t0 + 32 months
    points_debit(member_id=member.pk, points=90, reason="Prämie")  # eats C (80) and 10 of D
    # C's date: credits due 230, debits 210, expired 30: max(0, 230 - 210) - 30 = -10: nothing.
    assert points_expire_due(now=t0 + 28 * month + day).points == 0
    assert balance(member) == 30
    # D's date: 270 - 210 - 30 = 30: the 30 left of D.
    assert points_expire_due(now=t0 + 32 * month + day).points == 30
    assert balance(member) == 0

    expiries = PointEntry.objects.filter(member=member, kind=PointEntry.Kind.EXPIRE).order_by("created_at")
    assert [(entry.points, entry.created_at) for entry in expiries] == [
        (-30, t0 + 15 * month + day), (-30, t0 + 32 * month + day)]
    assert all(entry.expires_at is None for entry in expiries)


def test_the_job_is_idempotent(member, partner, base_rule):
    at = timezone.now() - relativedelta(months=25)
    book(member, partner, "70", "OLD", at)
    book(member, partner, "30", "NEW", timezone.now())
    now = timezone.now()
    assert points_expire_due(now=now).points == 70
    for _ in range(3):
        assert points_expire_due(now=now).points == 0
        assert points_expire_due(now=now + timedelta(days=30)).points == 0
    assert balance(member) == 30


@pytest.mark.parametrize("batch_size, interleave", [(2, 8), (3, 1), (10_000, 3)])
def test_small_batches_expire_exactly_what_one_pass_would(partner, base_rule, tiers, batch_size, interleave):
    old = timezone.now() - relativedelta(months=25)
    members = [factories.enrolled_member() for _ in range(7)]
    for index, someone in enumerate(members):
        book(someone, partner, str(10 + index), f"OLD-{index}", old)
        book(someone, partner, "5", f"NEW-{index}", timezone.now())
    points_debit(member_id=members[2].pk, points=4, reason="Prämie")   # 12 old: 8 expire
    points_debit(member_id=members[4].pk, points=14, reason="Prämie")  # 14 old: none expire
    # Each range is worked in `interleave` transactions (every n-th id): together they cover it.
    report = points_expire_due(batch_size=batch_size, interleave=interleave)
    assert report.members == 6
    assert report.points == sum(range(10, 17)) - 4 - 14
    assert [balance(someone) for someone in members] == [5, 5, 5, 5, 5, 5, 5]
    assert points_expire_due(batch_size=3).points == 0


def test_expiring_soon_warns_about_the_oldest_unspent_points(member, partner, base_rule, settings):
    settings.LOYALTY_EXPIRY_WARNING_DAYS = 30
    now = timezone.now()
    book(member, partner, "40", "SOON", now - relativedelta(months=24) + timedelta(days=10))
    book(member, partner, "25", "LATER", now - relativedelta(months=24) + timedelta(days=40))
    points, until = points_expiring_soon(member)
    assert points == 40
    assert now + timedelta(days=29) < until < now + timedelta(days=31)
    points_debit(member_id=member.pk, points=50, reason="Prämie")  # the 40 and 10 of the 25
    assert points_expiring_soon(member)[0] == 0
    assert points_expiring_by(member_id=member.pk, at=now + timedelta(days=41)) == 15


def test_without_an_expiry_period_credits_never_expire(member, partner, base_rule, settings):
    settings.LOYALTY_POINTS_EXPIRY_MONTHS = 0
    book(member, partner, "60", "A", timezone.now() - relativedelta(years=10))
    assert PointEntry.objects.get(member=member).expires_at is None
    assert points_expire_due(now=timezone.now() + relativedelta(years=50)).points == 0
    assert balance(member) == 60


def test_members_without_entries_or_anything_due_are_left_alone(member, partner, base_rule):
    factories.enrolled_member()  # no entries at all
    book(member, partner, "60", "A", timezone.now())
    assert points_expire_due() == points_expire_due(batch_size=1)
    assert not PointEntry.objects.filter(kind=PointEntry.Kind.EXPIRE).exists()


# --- Clock edge cases (Europe/Berlin) -------------------------------------------------------------

@pytest.mark.parametrize(("earned", "months", "expires"), [
    # Summer time to winter time: the local calendar day is kept, not the UTC instant.
    ("2024-07-15 00:30", 6, "2025-01-15 00:30"),
    ("2024-01-15 00:30", 6, "2024-07-15 00:30"),
    # Month ends: 31 August + 6 months is the last day of February (a leap year too).
    ("2023-08-31 12:00", 6, "2024-02-29 12:00"),
    ("2024-08-31 12:00", 6, "2025-02-28 12:00"),
    # Earned in the hour that happens twice when the clocks go back (the first 02:30).
    ("2024-10-27 02:30", 24, "2026-10-27 02:30"),
])
def test_credits_expire_on_the_local_calendar(settings, earned, months, expires):
    from zoneinfo import ZoneInfo

    from rewards.ledger import credit_expiry

    settings.LOYALTY_POINTS_EXPIRY_MONTHS = months
    berlin = ZoneInfo("Europe/Berlin")
    at = datetime.strptime(earned, "%Y-%m-%d %H:%M").replace(tzinfo=berlin)
    assert credit_expiry(at.astimezone(UTC)).astimezone(berlin).strftime("%Y-%m-%d %H:%M") == expires


def test_points_due_at_local_midnight_expire_in_the_run_after_it(member, partner, base_rule, settings):
    from zoneinfo import ZoneInfo

    settings.LOYALTY_POINTS_EXPIRY_MONTHS = 6
    berlin = ZoneInfo("Europe/Berlin")
    earned = datetime(2024, 7, 15, 0, 0, tzinfo=berlin)  # expires 2025-01-15 00:00 CET = 14 Jan 23:00 UTC
    purchase_record(member_id=member.pk, partner=partner, order_reference="SOMMER", amount=Decimal("40"),
                    occurred_at=earned, booked_at=earned)
    assert points_expire_due(now=datetime(2025, 1, 14, 23, 59, tzinfo=berlin)).points == 0
    assert points_expire_due(now=datetime(2025, 1, 15, 0, 1, tzinfo=berlin)).points == 40
    member.refresh_from_db()
    assert member.points_balance == 0
