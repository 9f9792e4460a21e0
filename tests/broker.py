"""The tests' view of the Celery broker: the throwaway Redis server's database of this pytest-xdist
worker (loyalty_site/settings/test.py), read with a plain Redis client."""

from __future__ import annotations

import redis
from django.conf import settings

QUEUE = "celery"  # Celery's default queue: a Redis list of that name


def broker_redis(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=5)


def queued_tasks(url: str | None = None) -> list[str]:
    """Names of the tasks waiting in the queue (not yet taken by a worker)."""
    import json

    return [json.loads(raw)["headers"]["task"] for raw in broker_redis(url).lrange(QUEUE, 0, -1)]


def purge_broker(url: str | None = None) -> None:
    """Whatever earlier tests of this worker left in the broker (queued and unacknowledged)."""
    broker_redis(url).flushdb()
