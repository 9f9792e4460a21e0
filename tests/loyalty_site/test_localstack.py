"""The servers of `make run` (scripts/localstack.sh): PostgreSQL and Redis under var/, data kept
between runs, and a run that was killed (servers gone, pid files left behind) does not stop the
next `make run` from starting them again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tests.celery_workers import ROOT, testdb

pytestmark = pytest.mark.slow


@pytest.fixture
def local_stack():
    folder = Path(tempfile.mkdtemp(prefix="loyalty-localstack-"))
    folder.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root
    env = {**os.environ, "LOYALTY_LOCAL_VAR_DIR": str(folder / "var"),
           "LOYALTY_LOCAL_PG_PORT": str(testdb.free_port()), "LOYALTY_LOCAL_REDIS_PORT": str(testdb.free_port())}

    def run(command: str) -> str:
        result = subprocess.run([str(ROOT / "scripts" / "localstack.sh"), command], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run.var = folder / "var"
    run.pg_url = f"postgresql://postgres@127.0.0.1:{env['LOYALTY_LOCAL_PG_PORT']}/loyalty"
    run.redis_url = f"redis://127.0.0.1:{env['LOYALTY_LOCAL_REDIS_PORT']}/0"
    try:
        yield run
    finally:
        subprocess.run([str(ROOT / "scripts" / "localstack.sh"), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _kill(pid_file: Path) -> None:
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def _down(check) -> bool:
    try:
        check()
    except Exception:
        return True
    return False


def test_local_servers_keep_their_data_and_start_again_after_a_killed_run(local_stack):
    assert "PostgreSQL started" in local_stack("start")
    with psycopg.connect(local_stack.pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")
    client = redis.Redis.from_url(local_stack.redis_url)
    client.set("kept", "1")
    time.sleep(1.5)  # Redis writes its append-only file every second

    # A killed run: both servers die, their pid files stay behind.
    _kill(local_stack.var / "postgres" / "data" / "postmaster.pid")
    _kill(local_stack.var / "redis" / "redis.pid")
    time.sleep(1)
    assert (local_stack.var / "postgres" / "data" / "postmaster.pid").exists()

    out = local_stack("start")
    assert "PostgreSQL started" in out and "Redis started" in out
    with psycopg.connect(local_stack.pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    assert redis.Redis.from_url(local_stack.redis_url).get("kept") == b"1"
    assert "already running" in local_stack("start")  # a second start keeps them

    out = local_stack("stop")
    assert "PostgreSQL stopped" in out and "Redis stopped" in out
    assert _down(lambda: psycopg.connect(local_stack.pg_url, connect_timeout=2).close())
    assert _down(lambda: redis.Redis.from_url(local_stack.redis_url, socket_connect_timeout=2).ping())
    assert not (local_stack.var / "redis" / "redis.pid").exists()
