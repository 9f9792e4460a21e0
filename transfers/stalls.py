"""Import jobs that wait without a worker, for the console (core/stalls.py says what "stalled" means)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from core.stalls import stalled_after, stalled_minutes, worker_down_text

from . import services as imports
from .models import ImportJob


def import_job_stall_text(job, *, now: datetime | None = None) -> str | None:
    """A job waiting for its dry run or import, which no worker runs (nobody holds its lock),
    for longer than the stall period (at once when the worker is down)."""
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
        "(/healthz).") % {"minutes": stalled_minutes()}
