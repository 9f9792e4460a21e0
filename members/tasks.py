from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="members.tasks.end_tier_grants")
def end_tier_grants() -> int:
    return services.tier_end_grants()


@shared_task(name="members.tasks.review_tiers")
def review_tiers() -> int:
    return services.tier_review_all()


@shared_task(name="members.tasks.apply_retention")
def apply_retention() -> dict:
    """Nightly: warn and erase long-inactive members, purge logs past their periods."""
    from dataclasses import asdict

    from .privacy import retention_run

    return asdict(retention_run())

