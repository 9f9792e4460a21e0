"""The foundation: PostgreSQL under the suite, health check, tasks only after commit,
and the embedded defaults (SQLite + filesystem broker) for `make run`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection, transaction

from loyalty_site.celery import app as celery_app
from loyalty_site.celery import heartbeat

ROOT = Path(__file__).resolve().parent.parent


def test_suite_runs_on_postgresql(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 150000


def test_staff_groups_exist(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"Marketing", "Support", "Finance", "Administrator"}


def test_healthz_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["worker"] == "unknown"


def test_healthz_sees_a_heartbeat(client, db):
    heartbeat()
    assert client.get("/healthz").json()["worker"] == "ok"


def _queued_messages() -> int:
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    return len(list(folder.glob("*.msg"))) if folder.exists() else 0


def _drain_queue() -> None:
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    for message in folder.glob("*.msg"):
        message.unlink()


@pytest.mark.django_db(transaction=True)
def test_task_queued_in_a_rolled_back_transaction_is_never_sent():
    _drain_queue()
    with pytest.raises(RuntimeError), transaction.atomic():
        heartbeat.delay_on_commit()
        raise RuntimeError("roll back")
    assert _queued_messages() == 0

    with transaction.atomic():
        heartbeat.delay_on_commit()
        assert _queued_messages() == 0  # not before the commit
    assert _queued_messages() == 1
    _drain_queue()


def test_celery_is_configured_for_safe_redelivery():
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_reject_on_worker_lost is True
    assert celery_app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_embedded_defaults_migrate_and_serve(tmp_path):
    """What `make run` uses: SQLite and the filesystem broker, no server to install."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", CACHE_URL=f"filecache://{tmp_path / 'cache'}",
               DJANGO_SETTINGS_MODULE="loyalty_site.settings.local")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    port = _free_port()
    server = subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = _get_when_up(f"http://127.0.0.1:{port}/healthz")
        assert health["status"] == 200
        body = json.loads(health["body"])
        assert body["database"] == "ok" and body["broker"] == "ok"
        login = _get_when_up(f"http://127.0.0.1:{port}/admin/login/")
        assert login["status"] == 200
        assert 'name="password"' in login["body"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def _get_when_up(url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return {"status": response.status, "body": response.read().decode()}
        except urllib.error.HTTPError as error:
            return {"status": error.code, "body": error.read().decode()}
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
