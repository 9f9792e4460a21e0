"""Celery tasks of the campaigns. They take ids and load fresh rows; running one twice (a
redelivery, the sweeper dispatching again) does nothing twice (see campaigns.services)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import raffles, sending, services


@shared_task(name="campaigns.tasks.prepare_campaign", ignore_result=True)
def prepare_campaign(campaign_id: int) -> int:
    return services.campaign_prepare(campaign_id=campaign_id)


# A batch must be over well before its claims count as stale, or the sweeper could act on a
# message that is still being sent.
# (A hard limit only: a soft one would interrupt a delivery in the middle, like a crash would.
# Its soft limit equals the hard one, which the pool checks first, so the global
# CELERY_TASK_SOFT_TIME_LIMIT never fires here; billiard refuses a soft limit above the hard one.)
@shared_task(name="campaigns.tasks.send_batch", ignore_result=True,
             time_limit=settings.LOYALTY_CAMPAIGN_CLAIM_TIMEOUT_SECONDS // 2,
             soft_time_limit=settings.LOYALTY_CAMPAIGN_CLAIM_TIMEOUT_SECONDS // 2)
def send_batch(message_ids: list[int]) -> dict:
    report = sending.messages_send(message_ids=message_ids)
    return {"sent": report.sent, "failed": report.failed, "skipped": dict(report.skipped),
            "stopped": report.stopped}


@shared_task(name="campaigns.tasks.start_due_campaigns", ignore_result=True)
def start_due_campaigns() -> int:
    return services.campaigns_start_due()


@shared_task(name="campaigns.tasks.run_triggers", ignore_result=True)
def run_triggers() -> dict:
    return services.triggers_run()


@shared_task(name="campaigns.tasks.resume_stalled_sends", ignore_result=True)
def resume_stalled_sends(stale_after_seconds: int | None = None) -> dict:
    report = services.sends_resume_stalled(stale_after_seconds=stale_after_seconds)
    report["raffle_notices"] = raffles.raffle_notices_resume()
    return report


@shared_task(name="campaigns.tasks.notify_raffle_winners", ignore_result=True)
def notify_raffle_winners(campaign_id: int) -> int:
    """The winners' prize notices (at most once each, see campaigns.raffles)."""
    return raffles.raffle_winners_notify(campaign_id=campaign_id)


@shared_task(name="campaigns.tasks.run_campaign_trigger", ignore_result=True)
def run_campaign_trigger(campaign_id: int) -> int:
    """One campaign's trigger, woken by an event (campaigns.subscribers) between beats."""
    return services.trigger_run_woken(campaign_id=campaign_id)
