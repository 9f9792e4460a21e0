"""Stalled background work, for the console: work that waits and makes no progress (reads only;
the beat sweepers are what repairs it, see docs/faults.md). Each app says what "stalled" means for
its own work (campaigns/stalls.py, transfers/stalls.py, partners/stalls.py) with these helpers.

"Stalled" means work is waiting and either
- nothing moved for `LOYALTY_STALLED_AFTER_MINUTES` (10 by default: the sweepers run every
  5 minutes, so a stall that outlived a sweep is worth a look), or
- the Celery worker's heartbeat is stale (it ran before and stopped: nothing will move).
Each text function returns a translated explanation for staff, or None when the work is fine.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext as _

from .heartbeat import worker_heartbeat


def stalled_after() -> timedelta:
    return timedelta(minutes=settings.LOYALTY_STALLED_AFTER_MINUTES)


def stalled_minutes() -> int:
    return settings.LOYALTY_STALLED_AFTER_MINUTES


def worker_down_text() -> str | None:
    """Why nothing moves at all: the worker stopped stamping its heartbeat."""
    worker = worker_heartbeat()
    if worker["status"] != "stale":
        return None
    return _("The Celery worker has not answered for %(seconds)d seconds: campaign sends, imports and webhook "
             "deliveries wait until it runs again (see /healthz).") % {"seconds": worker["last_seen_seconds"]}
