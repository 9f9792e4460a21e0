from __future__ import annotations

from celery import shared_task


@shared_task(name="members.tasks.apply_retention")
def apply_retention() -> dict:
    """Nightly: warn and erase long-inactive members, purge logs past their periods."""
    from dataclasses import asdict

    from .privacy import retention_run

    return asdict(retention_run())

