"""gunicorn's settings for the web processes: `gunicorn -c python:loyalty_site.gunicorn_conf
loyalty_site.wsgi` (README, bench/run.py). Command-line options still override these.

Garbage collection: a worker holds ~160,000 objects the garbage collector tracks once Django,
DRF and the URL configuration are loaded, and a full collection walks all of them (30-300 ms on
the bench machine): a till's request that happens to trigger one waits for it, which was the
tail of the balance read. None of those objects ever become garbage, so each worker collects
once after loading the application and then moves everything it has into the permanent
generation (`gc.freeze()`), which collections skip; objects of requests are collected as before.
"""

from __future__ import annotations

import gc
import os

# Processes (no shared GIL), one request at a time each: a till's request is short and mostly
# Python, so threads in a process would only wait for each other's GIL. WEB_CONCURRENCY as on
# most hosts; 4 on the bench's 2 cores (each worker also waits for PostgreSQL).
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "sync"


def post_worker_init(worker) -> None:
    """Runs in each worker after it loaded the application, before its first request."""
    gc.collect()
    gc.freeze()
