"""The Celery app.

Tasks are queued only after the surrounding transaction commits (`enqueue` below, or
`task.delay_on_commit`), so a rolled-back change never sends work to the broker.
Late acks with reject-on-worker-lost mean a killed worker's task is redelivered: every
task must therefore be idempotent (they take ids and load fresh rows).

The database is the outbox, the broker only a wake-up call: a message can be lost (a broker
wiped, a filesystem broker's task taken by a worker that was then killed) or not be
publishable at all (the broker down when the change commits). Every piece of queued work is
therefore a row first (a queued Message, a confirmed ImportJob, a pending WebhookDelivery), and
a beat sweeper queues again what made no progress (campaigns.tasks.resume_stalled_sends,
members.tasks.resume_stalled_imports, loyalty_site.webhooks.resume). See docs/faults.md.
"""

from __future__ import annotations

import functools
import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.local")

app = Celery("loyalty_site")
# `shared_task` finds its app per thread and, in a thread that did not create it, falls back to
# Celery's default app (amqp on localhost, which hangs without a broker there). Making this app
# the default sends tasks queued from any thread (runserver's, the test live server's) to the
# configured broker.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _ensure_filesystem_broker_folders() -> None:
    """kombu's filesystem transport expects its folders to exist."""
    from pathlib import Path

    from django.conf import settings

    if str(settings.CELERY_BROKER_URL).startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _on_configure(sender, **kwargs) -> None:
    _ensure_filesystem_broker_folders()


logger = logging.getLogger(__name__)


def enqueue(task, *args, **kwargs) -> None:
    """Queue `task` when the current transaction commits (at once outside a transaction).

    A broker that refuses the message must not turn a committed change into an error page (a
    partner would retry a purchase that is already booked): the work is in the database, so
    the failure is logged and the task's beat sweeper queues it once the broker is back."""
    from django.db import transaction

    transaction.on_commit(functools.partial(_publish, task, args, kwargs))


def _publish(task, args: tuple, kwargs: dict) -> None:
    try:
        task.apply_async(args, kwargs)
    except Exception:
        logger.exception("could not queue %s%r (broker unreachable?): its sweeper queues it again later",
                         task.name, args)


@app.task(name="loyalty_site.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Beat sends this every few seconds; the worker stamps the cache so /healthz can see both."""
    from django.core.cache import cache
    from django.utils import timezone

    cache.set("loyalty:heartbeat", timezone.now().timestamp(), timeout=None)
