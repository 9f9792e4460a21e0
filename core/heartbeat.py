"""Heartbeats of the Celery worker and beat, stamped in the shared cache (loyalty_site/celery.py
stamps them; /healthz and the console's stall warnings read them)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

WORKER_HEARTBEAT_KEY = "loyalty:heartbeat:worker"
BEAT_HEARTBEAT_KEY = "loyalty:heartbeat:beat"


def heartbeat_status(key: str) -> dict:
    """How long ago the process behind `key` stamped its heartbeat: "ok" while fresh, "stale"
    after three missed beats, "unknown" if it never did (or the cache is unreachable)."""
    try:
        stamp = cache.get(key)
    except Exception:
        stamp = None
    if stamp is None:
        return {"status": "unknown", "last_seen_seconds": None}
    age = time.time() - float(stamp)
    fresh = age < settings.LOYALTY_HEARTBEAT_SECONDS * 3
    return {"status": "ok" if fresh else "stale", "last_seen_seconds": round(age, 1)}


def worker_heartbeat() -> dict:
    return heartbeat_status(WORKER_HEARTBEAT_KEY)
