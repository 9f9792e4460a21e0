"""Beat jobs of the ledger. Tasks take ids (or nothing) and load fresh rows: safe to run twice."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="rewards.tasks.release_pending_points")
def release_pending_points() -> int:
    return services.release_due_pending_points()


@shared_task(name="rewards.tasks.expire_points")
def expire_points(full_scan: bool = False) -> dict:
    # Only members whose credits crossed their expiry lately can owe anything new; the
    # formula is idempotent, so the two-day overlap costs nothing and survives a missed night.
    since = None if full_scan else timezone.now() - timedelta(days=2)
    report = services.points_expire_due(since=since)
    return {"members": report.members, "points": report.points}


@shared_task(name="rewards.tasks.refresh_member_stats")
def refresh_member_stats() -> int:
    return services.member_stats_refresh()
