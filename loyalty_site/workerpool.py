"""Celery's prefork pool, with one fix: a worker goes on consuming after Redis comes back even when
one of its pool processes had exited just before.

When a pool process exits, Celery's AsynPool stops watching it (`_untrack_child_process` sets its
`_sentinel_poll` to None) and replaces it at the next `maintain_pool`. If the broker connection
is re-established in between (Redis restarted), the consumer registers the pool with the event
loop again, which watches every process still listed, the exited one too: its `_sentinel_poll`
is now None, not missing, so Celery hands None to the event loop and kombu raises "ValueError:
file descriptor is None". The consumer's restart fails and the worker stops consuming, alive but
idle, until it is restarted (tests/loyalty_site/test_faults_broker.py made it happen on a loaded machine).

Here an exited, untracked process is skipped at re-registration: there is nothing to watch, and
`maintain_pool` (run by a timer) joins and replaces it as it would have anyway.
Used through CELERY_WORKER_POOL (settings/base.py) by `celery worker`, with or without `-P prefork`.
"""

from __future__ import annotations

from celery.concurrency import asynpool, prefork


class AsynPool(asynpool.AsynPool):
    def _track_child_process(self, proc, hub) -> None:
        if getattr(proc, "_sentinel_poll", 0) is None:  # exited and untracked; replaced soon
            return
        super()._track_child_process(proc, hub)


class TaskPool(prefork.TaskPool):
    Pool = AsynPool
