"""The Celery app.

Tasks are queued only after the surrounding transaction commits (`core.tasks.enqueue`, or
`task.delay_on_commit`), so a rolled-back change never sends work to the broker.
Late acks with reject-on-worker-lost mean a killed worker's task is redelivered: every
task must therefore be idempotent (they take ids and load fresh rows).

The database is the outbox, the broker only a wake-up call: a message can be lost (a Redis
restarted without its data, a task taken by a worker that was then killed as a whole) or not be
publishable at all (the broker down when the change commits). Every piece of queued work is
therefore a row first (a queued Message, a confirmed ImportJob, a pending WebhookDelivery), and
a beat sweeper queues again what made no progress (campaigns.tasks.resume_stalled_sends,
members.tasks.resume_stalled_imports, loyalty_site.webhooks.resume). See docs/faults.md.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import before_task_publish

from core.heartbeat import BEAT_HEARTBEAT_KEY, WORKER_HEARTBEAT_KEY

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.local")

app = Celery("loyalty_site")
# `shared_task` finds its app per thread and, in a thread that did not create it, falls back to
# Celery's default app (amqp on localhost, which hangs without a broker there). Making this app
# the default sends tasks queued from any thread (runserver's, the test live server's) to the
# configured broker.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


logger = logging.getLogger(__name__)


HEARTBEAT_TASK = "loyalty_site.heartbeat"


@app.task(name=HEARTBEAT_TASK, ignore_result=True)
def heartbeat() -> None:
    """Beat sends this every few seconds; the worker stamps the cache so /healthz sees it run."""
    from django.core.cache import cache
    from django.utils import timezone

    cache.set(WORKER_HEARTBEAT_KEY, timezone.now().timestamp(), timeout=None)


@before_task_publish.connect(sender=HEARTBEAT_TASK)
def _stamp_beat_heartbeat(sender=None, **kwargs) -> None:
    """Only beat publishes the heartbeat: its stamp tells /healthz that beat runs, apart from the
    worker (a dead beat and a dead worker need different fixes)."""
    from django.core.cache import cache
    from django.utils import timezone

    try:
        cache.set(BEAT_HEARTBEAT_KEY, timezone.now().timestamp(), timeout=None)
    except Exception:  # the cache down must not stop beat from publishing
        logger.exception("could not stamp beat's heartbeat")
