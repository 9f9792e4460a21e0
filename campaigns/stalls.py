"""Campaign sends that wait without progress, for the console (core/stalls.py says what "stalled" means)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.stalls import stalled_after, stalled_minutes, worker_down_text

from .models import Campaign, Message


def _sending_campaigns() -> QuerySet:
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
        "(/healthz).", waiting) % {"count": waiting, "minutes": stalled_minutes()}


def campaigns_stalled_text(*, now: datetime | None = None) -> str | None:
    names = list(campaigns_stalled(now=now).order_by("pk").values_list("name", flat=True)[:10])
    if not names:
        return None
    return _("Stalled sending (no progress for more than %(minutes)d minutes): %(names)s. Check the Celery "
             "worker and broker (/healthz).") % {"minutes": stalled_minutes(), "names": ", ".join(names)}
