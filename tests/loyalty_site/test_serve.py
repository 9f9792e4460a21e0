"""The web server (loyalty_site/serve.py): granian with worker processes of one thread each,
WEB_CONCURRENCY of them; each freezes what it loaded so full garbage collections skip it; and the
product answers through it over real HTTP, pages and partner API alike, on kept-alive connections."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from loyalty_site import serve
from scripts.testdb import free_port
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


def test_a_worker_freezes_the_loaded_application_before_its_first_request(unfrozen):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    application = serve.frozen_application()
    assert callable(application)
    assert gc.get_freeze_count() > 10_000  # Django, DRF and our modules: skipped by every collection now
    assert gc.isenabled()  # requests' garbage is still collected


def test_the_server_runs_web_concurrency_single_threaded_wsgi_workers_and_restarts_failed_ones(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    server = serve.web_server(port=8123)
    assert (server.workers, server.blocking_threads, server.interface.value) == (3, 1, "wsgi")
    assert server.respawn_failed_workers and server.factory
    assert server.target == "loyalty_site.serve:frozen_application"
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert serve.web_server().workers == serve.DEFAULT_WORKERS == len(os.sched_getaffinity(0))  # one per core
    assert serve.web_server(workers=2).workers == 2


def _database_url() -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


@pytest.fixture
def served(transactional_db):
    """`python -m loyalty_site.serve` on a free port, on the test database, until the test ends."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.test",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "loyalty_site.serve", "--bind", f"127.0.0.1:{port}",
                                "--workers", "1", "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_product_answers_through_the_server_on_kept_alive_connections(served, tiers, partner):
    member = factories.relate(factories.enrolled_member(), partner)
    key = factories.PartnerAPIKeyFactory(partner=partner).raw_key
    till = requests.Session()
    till.headers.update({"Authorization": f"Api-Key {key}", "Accept-Language": "de"})

    answers = [till.get(f"{served}/api/v1/members/{member.public_id}/balance/", timeout=10) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[0].json()["member_id"] == str(member.public_id)
    assert answers[0].headers["Content-Language"] == "de"
    assert "close" not in answers[0].headers.get("Connection", "").lower()  # the till's connection stays open
    health = requests.get(f"{served}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["database"] == "ok"
    page = requests.get(f"{served}/accounts/login/", timeout=10)
    assert page.status_code == 200 and "csrftoken" in page.cookies
