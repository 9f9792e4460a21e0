"""/healthz: is the database reachable, is the broker reachable, are worker and beat alive."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from .celery import app as celery_app


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def _worker_status() -> dict:
    """The worker stamps a heartbeat that beat schedules; a fresh stamp proves both run."""
    stamp = cache.get("loyalty:heartbeat")
    if stamp is None:
        return {"status": "unknown", "last_seen_seconds": None}
    age = time.time() - float(stamp)
    fresh = age < settings.LOYALTY_HEARTBEAT_SECONDS * 3
    return {"status": "ok" if fresh else "stale", "last_seen_seconds": round(age, 1)}


@never_cache
def healthz(request):
    checks = {
        "database": "ok" if _database_ok() else "error",
        "broker": "ok" if _broker_ok() else "error",
    }
    worker = _worker_status()
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "error", **checks, "worker": worker["status"],
            "beat": worker["status"], "worker_last_seen_seconds": worker["last_seen_seconds"]}
    return JsonResponse(body, status=200 if healthy else 503)
