"""Beat jobs of the ledger. Tasks take ids (or nothing) and load fresh rows: safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import ledger, purchases, tiers


@shared_task(name="rewards.tasks.release_pending_points")
def release_pending_points() -> int:
    return purchases.release_due_pending_points()


@shared_task(name="rewards.tasks.expire_points")
def expire_points() -> dict:
    # The formula is idempotent: a retried or doubled run expires nothing twice.
    report = ledger.points_expire_due()
    return {"members": report.members, "points": report.points}


@shared_task(name="rewards.tasks.refresh_member_stats")
def refresh_member_stats() -> int:
    return purchases.member_stats_refresh()


@shared_task(name="rewards.tasks.expire_vouchers")
def expire_vouchers() -> int:
    # Compare-and-set per voucher: a run racing a till or a second run expires nothing twice.
    from .vouchers import redemptions_expire_due

    return redemptions_expire_due()


@shared_task(name="rewards.tasks.issue_waiting_stamp_rewards")
def issue_waiting_stamp_rewards() -> int:
    # Full stamp cards whose reward was sold out or switched off get it once it is back.
    from .vouchers import stamp_cards_issue_waiting

    return stamp_cards_issue_waiting()


# The tier jobs keep their task names (beat's schedule rows name them): the engine moved from members.
@shared_task(name="members.tasks.end_tier_grants")
def end_tier_grants() -> int:
    # Paid and invitation memberships end in the same daily run as grants.
    from .tier_memberships import tier_memberships_end_due

    return tiers.tier_end_grants() + tier_memberships_end_due()


@shared_task(name="members.tasks.review_tiers")
def review_tiers() -> int:
    return tiers.tier_review_all()
