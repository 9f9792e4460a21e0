"""/healthz: is the database reachable, is the broker reachable, are worker and beat alive (and,
with a read replica, is it reachable and how far behind)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from core.db_router import replica_configured, replica_lag_seconds, replica_too_far_behind
from core.heartbeat import BEAT_HEARTBEAT_KEY, heartbeat_status, worker_heartbeat

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


def _replica_state() -> dict:
    """With a replica: "ok", "lagging" (further behind than LOYALTY_REPLICA_MAX_LAG_SECONDS) or
    "error" (unreachable), and its lag. Not a failure of the service (reads then go to the
    primary), so it is reported and listed in "warnings", and the status stays 200."""
    if not replica_configured():
        return {}
    try:
        lag = replica_lag_seconds()
    except DatabaseError:
        return {"replica": "error", "replica_lag_seconds": None}
    state = "lagging" if replica_too_far_behind(lag) else "ok"
    return {"replica": state, "replica_lag_seconds": round(lag, 1)}


def _broker_name() -> str:
    """"redis" or "amqp" (the URL's scheme), never the URL: it may hold a password."""
    return urlsplit(str(celery_app.conf.broker_url)).scheme


@never_cache
def healthz(request):
    """503 when the database or broker is unreachable or the worker's or beat's heartbeat is
    stale (a monitor must not read "ok" while sends, imports and webhooks wait). A heartbeat
    never seen ("unknown": just started, or no worker/beat yet) does not fail the check; the
    body says which part is unhealthy."""
    checks = {
        "database": "ok" if _database_ok() else "error",
        "broker": "ok" if _broker_ok() else "error",
    }
    worker = worker_heartbeat()
    beat = heartbeat_status(BEAT_HEARTBEAT_KEY)
    failing = [name for name, value in checks.items() if value != "ok"]
    failing += [name for name, status in (("worker", worker), ("beat", beat)) if status["status"] == "stale"]
    replica = _replica_state()
    warnings = ["replica"] if replica.get("replica", "ok") != "ok" else []
    body = {"status": "error" if failing else "ok", **checks, **replica, "broker_transport": _broker_name(),
            "worker": worker["status"], "beat": beat["status"],
            "worker_last_seen_seconds": worker["last_seen_seconds"],
            "beat_last_seen_seconds": beat["last_seen_seconds"], "failing": failing, "warnings": warnings}
    return JsonResponse(body, status=503 if failing else 200)
