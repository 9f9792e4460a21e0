#!/usr/bin/env python3
"""Run a command against a throwaway PostgreSQL 15 server and a throwaway Redis server.

    python scripts/testdb.py -- pytest -q

initdb into a temporary directory, start on a free port on 127.0.0.1, export DATABASE_URL;
start redis-server (no persistence) in another temporary directory on a free port, export
LOYALTY_TEST_REDIS_URL (the test settings give each pytest-xdist worker its own Redis databases
for the Celery broker and the cache); run the command, then stop both servers and remove the
directories, also when the command fails or is interrupted. Exits with the command's status.
As root, PostgreSQL runs as `postgres` (it refuses to run as root).

`throwaway_standby` starts a streaming replica of such a server (pg_basebackup -R -X stream with a
replication role and slot of its own): the read-replica tests (tests/loyalty_site/test_read_replica.py)
start one lazily, per pytest-xdist worker, only when they run.
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


def server_options(port: int, data: Path, extra_settings: list[str] | None = None) -> list[str]:
    """On the command line, not in postgresql.conf: a standby copies the primary's files and gets
    the same options (a hot standby refuses to start with fewer max_connections than its primary).
    wal_level=replica and max_wal_senders=10 are PostgreSQL's defaults; initdb's pg_hba.conf lets
    127.0.0.1 open replication connections (trust, like every connection of this server)."""
    return ["-c listen_addresses=127.0.0.1", f"-p {port}", f"-k {data}", "-c fsync=off",
            "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
            *(extra_settings or [])]


def make_server_folder(prefix: str) -> tuple[Path, Path]:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    data = base / "data"
    data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    return base, data


@contextmanager
def throwaway_postgres(extra_settings: list[str] | None = None):
    binaries = pg_bin()
    base, data = make_server_folder("loyalty-pg-")
    port = free_port()
    options = server_options(port, data, extra_settings)
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


REPLICATION_ROLE = "loyalty_replication"


def run_sql(binaries: Path, port: int, sql: str) -> str:
    result = subprocess.run([str(binaries / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                             "postgres", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def ensure_replication_role(binaries: Path, port: int) -> None:
    """A login role with the REPLICATION attribute only (no superuser), created once per server;
    two pytest-xdist workers may try at the same moment, so "already there" is fine."""
    run_sql(binaries, port, f"""DO $$ BEGIN
        CREATE ROLE {REPLICATION_ROLE} WITH LOGIN REPLICATION;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$""")


@contextmanager
def throwaway_standby(primary_port: int, *, binaries: Path | None = None, slot: str | None = None):
    """A hot standby of the server on 127.0.0.1:`primary_port`, streaming from it through a
    replication slot (the primary keeps the WAL the standby has not received yet); stopped, its
    slot dropped and its folder removed afterwards. Yields {"port", "data", "slot"}."""
    binaries = binaries or pg_bin()
    slot = slot or f"loyalty_standby_{os.getpid()}"
    base, data = make_server_folder("loyalty-pg-standby-")
    port = free_port()
    started = slot_created = False
    try:
        ensure_replication_role(binaries, primary_port)
        # -R writes standby.signal and primary_conninfo (with the slot); -C creates the slot.
        # Its stderr is kept for a failure only (it warns about the server's socket in the folder).
        backup = subprocess.run(as_server_user([str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                                                str(primary_port), "-U", REPLICATION_ROLE, "-D", str(data), "-R",
                                                "-X", "stream", "-C", "-S", slot, "-c", "fast", "--no-sync"]),
                                capture_output=True, text=True)
        if backup.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {backup.stderr}")
        slot_created = True
        subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"),
                                       "-w", "-o", " ".join(server_options(port, data)), "start"]),
                       check=True, stdout=subprocess.DEVNULL)
        started = True
        yield {"port": port, "data": data, "slot": slot}
    finally:
        if started:
            subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if slot_created:
            _drop_slot(binaries, primary_port, slot)
        shutil.rmtree(base, ignore_errors=True)


def _drop_slot(binaries: Path, port: int, slot: str) -> None:
    """The walsender of a stopped standby takes a moment to let go of its slot."""
    deadline = time.monotonic() + 10
    while True:
        try:
            run_sql(binaries, port, f"SELECT pg_drop_replication_slot('{slot}')")
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                return  # the throwaway primary goes away with it
            time.sleep(0.1)


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
