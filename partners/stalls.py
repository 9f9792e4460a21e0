"""Webhook deliveries whose next attempt is overdue, for the console (core/stalls.py says what "stalled" means)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.stalls import stalled_after, stalled_minutes, worker_down_text

from .models import WebhookDelivery
from .webhooks import JITTER, backoff_base


def webhook_deliveries_stalled(*, now: datetime | None = None) -> QuerySet:
    """Pending deliveries whose next attempt is overdue by more than the stall period (the
    longest backoff of their attempt count, as the sweeper computes it)."""
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
        "minutes": stalled_minutes()}


def webhook_deliveries_stalled_text(*, now: datetime | None = None) -> str | None:
    count = webhook_deliveries_stalled(now=now).count()
    if not count:
        return None
    return ngettext("%(count)d webhook delivery is stalled (overdue by more than %(minutes)d minutes). Check the "
                    "Celery worker and broker (/healthz).",
                    "%(count)d webhook deliveries are stalled (overdue by more than %(minutes)d minutes). Check the "
                    "Celery worker and broker (/healthz).", count) % {"count": count, "minutes": stalled_minutes()}
