"""Celery tasks of offers: they take ids and load fresh rows; running one twice adds nothing
twice (the assignment skips members who have the coupon)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="offers.tasks.assign_offer", ignore_result=True)
def assign_offer(offer_id: int) -> int:
    return services.offer_assign(offer_id=offer_id).assigned


@shared_task(name="offers.tasks.assign_active_offers", ignore_result=True)
def assign_active_offers() -> int:
    return services.offers_assign_active()
