"""Queueing Celery tasks from a change: after its transaction commits, never failing the change.

The database is the outbox, the broker only a wake-up call (loyalty_site/celery.py holds the
Celery app; docs/faults.md): every piece of queued work is a row first, and a beat sweeper
queues again what made no progress. So a message the broker refuses is logged, not raised.
"""

from __future__ import annotations

import functools
import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(task, *args, **kwargs) -> None:
    """Queue `task` when the current transaction commits (at once outside a transaction).

    A broker that refuses the message must not turn a committed change into an error page (a
    partner would retry a purchase that is already booked): the work is in the database, so
    the failure is logged and the task's beat sweeper queues it once the broker is back."""
    transaction.on_commit(functools.partial(_publish, task, args, kwargs))


def _publish(task, args: tuple, kwargs: dict) -> None:
    try:
        task.apply_async(args, kwargs)
    except Exception:
        logger.exception("could not queue %s%r (broker unreachable?): its sweeper queues it again later",
                         task.name, args)
