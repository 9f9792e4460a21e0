"""Stalled background work, for the console: campaign sends, imports and webhook deliveries that
wait and make no progress (reads only; the beat sweepers are what repairs them, see docs/faults.md).

"Stalled" means work is waiting and either
- nothing moved for `LOYALTY_STALLED_AFTER_MINUTES` (10 by default: the sweepers run every
  5 minutes, so a stall that outlived a sweep is worth a look), or
- the Celery worker's heartbeat is stale (it ran before and stopped: nothing will move).
Each function returns a translated explanation for staff, or None when the work is fine.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .health import worker_heartbeat


def stalled_after() -> timedelta:
    return timedelta(minutes=settings.LOYALTY_STALLED_AFTER_MINUTES)


def worker_down_text() -> str | None:
    """Why nothing moves at all: the worker stopped stamping its heartbeat."""
    worker = worker_heartbeat()
    if worker["status"] != "stale":
        return None
    return _("The Celery worker has not answered for %(seconds)d seconds: campaign sends, imports and webhook "
             "deliveries wait until it runs again (see /healthz).") % {"seconds": worker["last_seen_seconds"]}


def _minutes() -> int:
    return settings.LOYALTY_STALLED_AFTER_MINUTES


# --- Campaigns ---------------------------------------------------------------------------------

def _sending_campaigns() -> QuerySet:
    from campaigns.models import Campaign, Message

    waiting = Message.objects.filter(status__in=[Message.Status.QUEUED, Message.Status.SENDING])
    return Campaign.objects.filter(status__in=[Campaign.Status.SENDING, Campaign.Status.ACTIVE]).filter(
        Q(pk__in=waiting.values("campaign_id")) | Q(status=Campaign.Status.SENDING, prepared_at__isnull=True))


def campaigns_stalled(*, now: datetime | None = None) -> QuerySet:
    """Campaigns with messages waiting (or an audience not yet prepared) and no progress for the
    stall period; all of them with waiting work while the worker is down."""
    campaigns = _sending_campaigns()
    if worker_down_text():
        return campaigns
    cutoff = (now or timezone.now()) - stalled_after()
    return campaigns.filter(Q(last_progress_at__lte=cutoff) | Q(last_progress_at__isnull=True,
                                                                 started_at__lte=cutoff))


def campaign_stall_text(campaign, *, now: datetime | None = None) -> str | None:
    from campaigns.models import Message

    if not campaigns_stalled(now=now).filter(pk=campaign.pk).exists():
        return None
    waiting = Message.objects.filter(campaign=campaign,
                                     status__in=[Message.Status.QUEUED, Message.Status.SENDING]).count()
    return worker_down_text() or ngettext(
        "Sending is stalled: %(count)d message has been waiting without progress for more than %(minutes)d "
        "minutes. It is queued again every 5 minutes; if this stays, check the Celery worker and broker "
        "(/healthz).",
        "Sending is stalled: %(count)d messages have been waiting without progress for more than %(minutes)d "
        "minutes. They are queued again every 5 minutes; if this stays, check the Celery worker and broker "
        "(/healthz).", waiting) % {"count": waiting, "minutes": _minutes()}


def campaigns_stalled_text(*, now: datetime | None = None) -> str | None:
    names = list(campaigns_stalled(now=now).order_by("pk").values_list("name", flat=True)[:10])
    if not names:
        return None
    return _("Stalled sending (no progress for more than %(minutes)d minutes): %(names)s. Check the Celery "
             "worker and broker (/healthz).") % {"minutes": _minutes(), "names": ", ".join(names)}


# --- Imports -----------------------------------------------------------------------------------

def import_job_stall_text(job, *, now: datetime | None = None) -> str | None:
    """A job waiting for its dry run or import, which no worker runs (nobody holds its lock),
    for longer than the stall period (at once when the worker is down)."""
    from transfers import services as imports
    from transfers.models import ImportJob

    since = {ImportJob.Status.PENDING: job.created_at, ImportJob.Status.ANALYSING: job.started_at or job.created_at,
             ImportJob.Status.IMPORTING: job.confirmed_at or job.created_at}.get(job.status)
    if since is None:
        return None
    worker_down = worker_down_text()
    if not worker_down and since > (now or timezone.now()) - stalled_after():
        return None
    lock = imports.IMPORT_LOCK if job.status == ImportJob.Status.IMPORTING else imports.DRY_RUN_LOCK
    if imports.job_is_running(job.pk, key=lock):
        return None  # a worker is on it: a large file simply takes time
    return worker_down or _(
        "This import is stalled: it has been waiting for more than %(minutes)d minutes and no worker is working "
        "on it. It is queued again every 5 minutes; if this stays, check the Celery worker and broker "
        "(/healthz).") % {"minutes": _minutes()}


# --- Webhooks ----------------------------------------------------------------------------------

def webhook_deliveries_stalled(*, now: datetime | None = None) -> QuerySet:
    """Pending deliveries whose next attempt is overdue by more than the stall period (the
    longest backoff of their attempt count, as the sweeper computes it)."""
    from partners.models import WebhookDelivery
    from partners.webhooks import JITTER, backoff_base

    now = now or timezone.now()
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
    if worker_down_text():
        return pending
    overdue = Q()
    for attempts in range(settings.LOYALTY_WEBHOOK_MAX_ATTEMPTS + 1):
        backoff = 0 if attempts == 0 else backoff_base(attempts) * (1 + JITTER)
        cutoff = now - stalled_after() - timedelta(seconds=backoff)
        overdue |= Q(attempts=attempts) & (Q(last_attempt_at__lte=cutoff)
                                           | Q(last_attempt_at__isnull=True, created_at__lte=cutoff))
    return pending.filter(overdue)


def webhook_delivery_stall_text(delivery, *, now: datetime | None = None) -> str | None:
    if not webhook_deliveries_stalled(now=now).filter(pk=delivery.pk).exists():
        return None
    return worker_down_text() or _(
        "This delivery is stalled: its next attempt is overdue by more than %(minutes)d minutes. It is queued "
        "again every 5 minutes; if this stays, check the Celery worker and broker (/healthz).") % {
        "minutes": _minutes()}


def webhook_deliveries_stalled_text(*, now: datetime | None = None) -> str | None:
    count = webhook_deliveries_stalled(now=now).count()
    if not count:
        return None
    return ngettext("%(count)d webhook delivery is stalled (overdue by more than %(minutes)d minutes). Check the "
                    "Celery worker and broker (/healthz).",
                    "%(count)d webhook deliveries are stalled (overdue by more than %(minutes)d minutes). Check the "
                    "Celery worker and broker (/healthz).", count) % {"count": count, "minutes": _minutes()}
