#!/usr/bin/env python3
"""Run a command against a throwaway PostgreSQL 15 server and a throwaway Redis server.

    python scripts/testdb.py -- pytest -q

initdb into a temporary directory, start on a free port on 127.0.0.1, export DATABASE_URL;
start redis-server (no persistence) in another temporary directory on a free port, export
LOYALTY_TEST_REDIS_URL (the test settings give each pytest-xdist worker its own Redis databases
for the Celery broker and the cache); run the command, then stop both servers and remove the
directories, also when the command fails or is interrupted. Exits with the command's status.
As root, PostgreSQL runs as `postgres` (it refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

PG_BIN_CANDIDATES = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"]


def pg_bin() -> Path:
    override = os.environ.get("PG_BIN")
    for candidate in ([override] if override else []) + PG_BIN_CANDIDATES:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    sys.exit("PostgreSQL server binaries not found (apt-get install postgresql-15, or set PG_BIN).")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def throwaway_postgres(extra_settings: list[str] | None = None):
    binaries = pg_bin()
    base = Path(tempfile.mkdtemp(prefix="loyalty-pg-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    options = ["-c listen_addresses=127.0.0.1", f"-p {port}", f"-k {data}", "-c fsync=off",
               "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
               *(extra_settings or [])]
    started = False
    try:
        subprocess.run(as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                       "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"),
                                       "-w", "-o", " ".join(options), "start"]), check=True, stdout=subprocess.DEVNULL)
        started = True
        # The database named in the URL, for commands run against the server (pytest makes its own).
        subprocess.run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "loyalty"],
                       check=True)
        yield {"url": f"postgres://postgres@127.0.0.1:{port}/loyalty", "port": port, "data": data,
               "bin": binaries}
    finally:
        if started:
            subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


REDIS_DATABASES = 64  # the test settings take two per pytest-xdist worker (broker, cache)


def redis_server_binary() -> str:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        sys.exit("redis-server not found (apt-get install redis-server, see scripts/system-deps.sh).")
    return binary


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen on 127.0.0.1:{port} within {timeout} s")


def start_redis(folder: Path, port: int | None = None, *, persistent: bool = False) -> tuple[subprocess.Popen, int]:
    """A redis-server on 127.0.0.1 in `folder` (its log there): in memory only unless `persistent`
    (append-only file in `folder`). Also used by the broker fault tests, which kill and restart it."""
    port = port or free_port()
    options = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--daemonize", "no",
               "--databases", str(REDIS_DATABASES), "--logfile", str(folder / "redis.log"), "--save", "",
               "--appendonly", "yes" if persistent else "no", "--protected-mode", "yes"]
    process = subprocess.Popen([redis_server_binary(), *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
    except Exception:
        stop_process(process)
        raise
    return process, port


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def throwaway_redis():
    base = Path(tempfile.mkdtemp(prefix="loyalty-redis-"))
    process = None
    try:
        process, port = start_redis(base)
        yield {"url": f"redis://127.0.0.1:{port}", "port": port, "dir": base}
    finally:
        if process is not None:
            stop_process(process)
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print(__doc__)
        return 2

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    with throwaway_postgres() as server, throwaway_redis() as redis:
        env = {**os.environ, "DATABASE_URL": server["url"], "LOYALTY_TEST_REDIS_URL": redis["url"]}
        process = subprocess.Popen(argv, env=env)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
