"""A version stamp in the shared cache for data that every process keeps a copy of.

Processes compare their copy's stamp with the shared one (one cache read) instead of reading
the rows again; whoever changes the rows replaces the stamp, and every web and worker process
reloads on its next use. The cache must be shared between processes for that (Redis or the
file cache; the test and bench settings run in one process per cache).

A partner API request checks up to five stamps (the key, the earning rules several times, the
webhook subscriptions, the trigger campaigns, the challenges): each a round trip to Redis, which
cost a balance read a fifth of its CPU. Inside `stamps_read_once()` (around every partner API
request) all stamps are read in one `get_many` when it opens and each is then taken from that
read: the request sees the stamps as they were when it began, as if it had started a moment
earlier. Its own `bump` counts at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.cache import cache
from django.db import transaction

# Every stamp's key, so one read can fetch them all.
_KEYS: set[str] = set()
# The stamps read when the innermost `stamps_read_once()` opened (None outside one).
_read_once: ContextVar[dict[str, str] | None] = ContextVar("shared_version_read_once", default=None)


class SharedVersion:
    def __init__(self, key: str):
        self.key = key
        _KEYS.add(key)

    def current(self) -> str:
        stamps = _read_once.get()
        if stamps is not None and self.key in stamps:
            return stamps[self.key]
        version = cache.get(self.key)
        if version is None:
            version = uuid.uuid4().hex
            cache.add(self.key, version, timeout=None)
            version = cache.get(self.key, version)
        if stamps is not None:
            stamps[self.key] = version
        return version

    def bump(self) -> None:
        version = uuid.uuid4().hex
        cache.set(self.key, version, timeout=None)
        stamps = _read_once.get()
        if stamps is not None:
            stamps[self.key] = version

    def bump_now_and_on_commit(self) -> None:
        # Now, for this process (it sees its own uncommitted change), and again after commit, for
        # any process that reloaded in between and could only see the old rows.
        self.bump()
        transaction.on_commit(self.bump)


@contextmanager
def stamps_read_once() -> Iterator[None]:
    """Within: every stamp comes from one cache read made on entry (see the module docstring)."""
    token = _read_once.set(cache.get_many(sorted(_KEYS)))
    try:
        yield
    finally:
        _read_once.reset(token)
