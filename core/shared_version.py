"""A version stamp in the shared cache for data that every process keeps a copy of.

Processes compare their copy's stamp with the shared one (one cache read) instead of reading
the rows again; whoever changes the rows replaces the stamp, and every web and worker process
reloads on its next use. The cache must be shared between processes for that (Redis or the
file cache; the test and bench settings run in one process per cache).
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction


class SharedVersion:
    def __init__(self, key: str):
        self.key = key

    def current(self) -> str:
        version = cache.get(self.key)
        if version is None:
            version = uuid.uuid4().hex
            cache.add(self.key, version, timeout=None)
            version = cache.get(self.key, version)
        return version

    def bump(self) -> None:
        cache.set(self.key, uuid.uuid4().hex, timeout=None)

    def bump_now_and_on_commit(self) -> None:
        # Now, for this process (it sees its own uncommitted change), and again after commit, for
        # any process that reloaded in between and could only see the old rows.
        self.bump()
        transaction.on_commit(self.bump)
