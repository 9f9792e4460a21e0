"""The foundation: PostgreSQL and Redis under the suite, health check, tasks only after commit,
and the defaults `make run` uses (its PostgreSQL cluster and Redis server under var/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction

from core.heartbeat import BEAT_HEARTBEAT_KEY, WORKER_HEARTBEAT_KEY
from loyalty_site.celery import app as celery_app
from loyalty_site.celery import heartbeat
from tests.broker import purge_broker, queued_tasks

ROOT = Path(__file__).resolve().parents[2]


def test_suite_runs_on_postgresql(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 150000


def test_staff_groups_exist(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"Marketing", "Support", "Finance", "Administrator"}


def test_suite_runs_on_redis_for_broker_and_cache():
    assert settings.CELERY_BROKER_URL.startswith("redis://127.0.0.1:")
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert settings.CACHES["default"]["LOCATION"] != settings.CELERY_BROKER_URL  # flushing one keeps the other


def test_healthz_reports_database_and_redis_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "ok" and body["broker_transport"] == "redis"
    assert body["worker"] == "unknown" and body["beat"] == "unknown"


def test_healthz_sees_the_worker_and_beat_heartbeats(client, db):
    heartbeat.delay()  # what beat does: publishing stamps beat's heartbeat
    heartbeat()  # what the worker does with it
    body = client.get("/healthz").json()
    assert body["worker"] == "ok" and body["beat"] == "ok" and body["status"] == "ok"
    purge_broker()


@pytest.mark.parametrize("stale", ["worker", "beat"])
def test_healthz_answers_503_and_names_a_stale_heartbeat(client, db, stale):
    heartbeat.delay()
    heartbeat()
    purge_broker()
    long_ago = time.time() - settings.LOYALTY_HEARTBEAT_SECONDS * 4
    cache.set({"worker": WORKER_HEARTBEAT_KEY, "beat": BEAT_HEARTBEAT_KEY}[stale], long_ago, timeout=None)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["failing"] == [stale] and body[stale] == "stale"
    assert body[stale + "_last_seen_seconds"] >= settings.LOYALTY_HEARTBEAT_SECONDS * 4 - 1
    assert body["database"] == "ok" and body["broker"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_task_queued_in_a_rolled_back_transaction_is_never_sent():
    purge_broker()
    with pytest.raises(RuntimeError), transaction.atomic():
        heartbeat.delay_on_commit()
        raise RuntimeError("roll back")
    assert queued_tasks() == []

    with transaction.atomic():
        heartbeat.delay_on_commit()
        assert queued_tasks() == []  # not before the commit
    assert queued_tasks() == ["loyalty_site.heartbeat"]
    purge_broker()


def test_celery_is_configured_for_safe_redelivery():
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_reject_on_worker_lost is True
    assert celery_app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def _local_settings(**env_overrides: str) -> subprocess.CompletedProcess:
    """The settings `make run` gets: the local module, nothing from the test run's environment."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_SETTINGS_MODULE="loyalty_site.settings.local", **env_overrides)
    script = ("import json, django; django.setup(); from django.conf import settings as s; "
              "print(json.dumps([s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'], "
              "s.DATABASES['default']['PORT'], s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'], "
              "s.CACHES['default']['LOCATION']]))")
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_local_defaults_are_the_postgresql_and_redis_servers_make_run_starts():
    result = _local_settings()
    assert result.returncode == 0, result.stderr
    engine, host, port, broker, cache_backend, cache_location = json.loads(result.stdout)
    assert (engine, host, port) == ("core.postgresql", "127.0.0.1", 54329)
    assert broker == "redis://127.0.0.1:63799/0"
    assert (cache_backend, cache_location) == ("django.core.cache.backends.redis.RedisCache",
                                               "redis://127.0.0.1:63799/1")
    localstack = (ROOT / "scripts" / "localstack.sh").read_text()
    assert "PG_PORT=${LOYALTY_LOCAL_PG_PORT:-54329}" in localstack
    assert "REDIS_PORT=${LOYALTY_LOCAL_REDIS_PORT:-63799}" in localstack


def test_a_database_url_that_is_not_postgresql_is_refused():
    result = _local_settings(DATABASE_URL="mysql://loyalty@127.0.0.1/loyalty")
    assert result.returncode != 0 and "DATABASE_URL must name a PostgreSQL database" in result.stderr
