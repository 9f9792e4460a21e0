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

# Processes (no shared GIL) with one request at a time each. WEB_CONCURRENCY as on most hosts.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "sync"
keepalive = 30


def post_worker_init(worker) -> None:
    """Runs in each worker after it loaded the application, before its first request."""
    gc.collect()
    gc.freeze()
