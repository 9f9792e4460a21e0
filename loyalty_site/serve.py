"""The web server of production and of `make bench`: granian serving `loyalty_site.wsgi`.

    python -m loyalty_site.serve --bind 0.0.0.0:8000    # WEB_CONCURRENCY workers (default: one per core)

Why granian and not gunicorn: gunicorn's sync workers parse HTTP in Python, close the connection
after every answer (a till reconnects for each request) and all wake up for each new connection.
Measured side by side on the bench machine (16 clients, same database, `bench/run.py`), the web
processes spent about a third less CPU per request under granian, whose HTTP handling is Rust and
keeps connections alive. The application is the same WSGI callable either way.

Each worker is a process running the application in one thread (`blocking_threads=1`): a till's
request is short and mostly Python, so more threads in a process would only wait for each
other's GIL. A worker that dies is started again.

Garbage collection: a worker holds ~160,000 objects the collector tracks once Django, DRF and the
URL configuration are loaded, and a full collection walks all of them (30-300 ms on the bench
machine): a request that happened to trigger one waited for it. None of those objects ever become
garbage, so each worker collects once after loading the application and moves everything into the
permanent generation (`gc.freeze()`), which collections skip; objects of requests are collected
as before.
"""

from __future__ import annotations

import argparse
import gc
import os

# One worker per core the process may use. Measured at 16 clients on the bench's 2 cores: 2 workers
# gave the same rates as 4 with shorter tails (balance read p99 15 ms against 20-23, purchase p99
# 46 ms against 71): granian's own threads read and write the sockets, so a worker waiting for
# PostgreSQL costs little, and more workers than cores only take turns at them.
DEFAULT_WORKERS = len(os.sched_getaffinity(0))


def frozen_application():
    """Each worker's application (granian calls this factory in the worker, after it started)."""
    from loyalty_site.wsgi import application

    gc.collect()
    gc.freeze()
    return application


def web_server(*, address: str = "127.0.0.1", port: int = 8000, workers: int | None = None, log_level: str = "info"):
    """The configured granian server (`.serve()` runs it until it is stopped)."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels

    return Granian(
        "loyalty_site.serve:frozen_application", factory=True, interface=Interfaces.WSGI, http=HTTPModes.http1,
        address=address, port=port, workers=workers or int(os.environ.get("WEB_CONCURRENCY", DEFAULT_WORKERS)),
        blocking_threads=1, websockets=False, respawn_failed_workers=True, log_level=LogLevels(log_level),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Treuepunkt (the pages, the console and the partner API).")
    parser.add_argument("--bind", default="127.0.0.1:8000", help="address:port (default 127.0.0.1:8000)")
    parser.add_argument("--workers", type=int, help=f"processes (default WEB_CONCURRENCY or {DEFAULT_WORKERS})")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    options = parser.parse_args(argv)
    address, _colon, port = options.bind.rpartition(":")
    web_server(address=address or "127.0.0.1", port=int(port), workers=options.workers,
               log_level=options.log_level).serve()


if __name__ == "__main__":
    main()
