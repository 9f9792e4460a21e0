from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="members.tasks.end_tier_grants")
def end_tier_grants() -> int:
    return services.tier_end_grants()


@shared_task(name="members.tasks.review_tiers")
def review_tiers() -> int:
    return services.tier_review_all()
