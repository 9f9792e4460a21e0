"""Real Celery workers and a Redis broker a test can kill, for the fault tests
(tests/loyalty_site/test_faults_broker.py, tests/campaigns/test_campaigns_worker.py,
tests/transfers/test_imports_worker.py).

`own_broker` starts a redis-server of the test's own (scripts/testdb.py's `start_redis`, in the
test's temporary folder) and points this process's Celery app at it, so killing it disturbs
neither the other pytest-xdist worker nor the cache. Workers are `celery worker` processes with
the prefork pool, started in their own session with the broker's URL in their environment;
`kill_pool` kills only the pool's child processes (the main process stays, as after an OOM kill),
`kill` the whole worker.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from loyalty_site.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent

_spec = importlib.util.spec_from_file_location("testdb", ROOT / "scripts" / "testdb.py")
testdb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(testdb)


def database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{user}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def wait_for(condition, *, timeout: float, what: str, log: Path | None = None) -> float:
    """Poll until `condition()` is true; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            tail = log.read_text()[-4000:] if log is not None and log.exists() else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; worker log:\n{tail}")
        time.sleep(0.05)
    return time.monotonic() - started


def _point_celery_at(url: str) -> None:
    """The app takes its connection and producer pools from kombu's per-URL pools on first use:
    forget them with the URL (not close them: kombu keeps them for the URL, other tests use them)."""
    celery_app.conf.broker_url = url
    celery_app.conf.broker_write_url = None
    celery_app.conf.broker_read_url = None
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


class Broker:
    """A redis-server this test owns: `kill()` (SIGKILL, like a crash), `start()` again on the same
    port, empty (it keeps no data: what it held is lost, the hardest case for us)."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.process, self.port = testdb.start_redis(folder)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        testdb.stop_process(self.process, signal.SIGKILL)

    def start(self) -> None:
        self.process, _port = testdb.start_redis(self.folder, self.port)

    def restart(self, down_seconds: float = 0.5) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()

    def client(self):
        from tests.broker import broker_redis

        return broker_redis(self.url)

    def queued(self) -> int:
        return self.client().llen("celery")

    def stop(self) -> None:
        testdb.stop_process(self.process)


class Workers:
    """`start(settings_module, **env)`; whatever still runs is stopped at the end of the test."""

    def __init__(self, broker: Broker, log: Path):
        self.broker = broker
        self.log = log
        self.running: list[subprocess.Popen] = []
        self.env: dict = {}

    def start(self, settings_module: str = "loyalty_site.settings.test", **extra: str) -> subprocess.Popen:
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": database_url(),
                    "LOYALTY_TEST_BROKER_URL": self.broker.url, **extra}
        name = f"fault-{len(self.running)}"
        command = [sys.executable, "-m", "celery", "-A", "loyalty_site", "worker", "--pool=prefork",
                   "--concurrency=2", "--loglevel=INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
        with self.log.open("ab") as output:
            # Its own session, so `kill` takes the pool's child processes with it.
            self.running.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=output,
                                                 stderr=subprocess.STDOUT, start_new_session=True))
        return self.running[-1]

    def pool_pids(self, worker: subprocess.Popen | None = None) -> list[int]:
        worker = worker or self.running[-1]
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == worker.pid:  # the parent pid
                children.append(int(stat.parent.name))
        return children

    def wait_for_pool(self, worker: subprocess.Popen | None = None, count: int = 2) -> None:
        wait_for(lambda: len(self.pool_pids(worker)) >= count, timeout=60, what="the worker's pool", log=self.log)

    def kill_pool(self, worker: subprocess.Popen | None = None) -> list[int]:
        """SIGKILL the pool's processes; the worker's main process replaces them."""
        pids = self.pool_pids(worker)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def kill(self, sig=signal.SIGKILL) -> None:
        while self.running:
            worker = self.running.pop()
            try:
                os.killpg(worker.pid, sig)
            except ProcessLookupError:
                continue
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=60)

    def wait_for(self, condition, *, what: str, timeout: float = 120) -> float:
        return wait_for(condition, timeout=timeout, what=what, log=self.log)


@pytest.fixture
def own_broker(tmp_path):
    broker = Broker(tmp_path / "redis")
    previous = celery_app.conf.broker_url
    _point_celery_at(broker.url)
    try:
        yield broker
    finally:
        _point_celery_at(previous)
        broker.stop()


@pytest.fixture
def workers(own_broker, tmp_path):
    pool = Workers(own_broker, tmp_path / "worker.log")
    yield pool
    pool.kill(signal.SIGTERM)
