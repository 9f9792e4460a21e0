"""Beat jobs and tasks of referrals. Tasks take ids (or nothing) and load fresh rows: safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="referrals.tasks.pay_referral")
def pay_referral(referral_id: int) -> str:
    # Locks both members in primary-key order and checks the status under the lock: a second
    # run (or a run racing the beat job) finds the referral rewarded and pays nothing.
    return services.referral_pay(referral_id=referral_id).status


@shared_task(name="referrals.tasks.release_due_referrals")
def release_due_referrals() -> int:
    return services.referrals_release_due()


@shared_task(name="referrals.tasks.expire_referrals")
def expire_referrals() -> int:
    return services.referrals_expire_due()
