"""Reads from a PostgreSQL streaming replica, only where a caller asks for it.

`DATABASE_REPLICA_URL` (settings: the `replica` alias) names a hot standby of the primary. Without
it every query goes to the primary as before: the router answers None and Django does what it
always does. With it, the rule is opt-in, never by default:

- a read goes to the replica only inside `reading_replica()` (a context manager, also usable as a
  decorator): the console's changelists (loyalty_site.replica's middleware, GET only), the
  segment editor's live count, the dashboard's figures job and the exports;
- every write goes to the primary, and once a scope has written (the router sees the write), its
  later reads go to the primary too: they may need to see that write, and a replica that streams
  it a few milliseconds later would not have it yet;
- inside a transaction (`atomic`) on the primary, every read goes to the primary: services lock,
  check and write there, and a replica's snapshot would be older than their locks;
- `primary_pinned()` turns the scopes off for a while: the console's middleware pins a browser
  that wrote in the last LOYALTY_REPLICA_STICKY_SECONDS (a staff user who saved and is sent to
  the list sees the saved row, however far the replica lags);
- sessions are always read on the primary (a login just written must be found);
- a replica that cannot be reached is left alone for REPLICA_RETRY_SECONDS (this process reads
  the primary meanwhile): a standby being rebuilt slows the console down, it does not break it;
- a replica whose replay lags more than LOYALTY_REPLICA_MAX_LAG_SECONDS behind what it received
  is left alone too (checked at most every REPLICA_LAG_CHECK_SECONDS per process): a list that is
  minutes old is worse than a slower one. /healthz reports both (loyalty_site.health).

The scope is a context variable, so threads and Celery tasks each have their own. The replica
holds the whole cluster, so it needs no migrations (`allow_migrate` only on the primary).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
REPLICA_RETRY_SECONDS = 30
# Always read on the primary: a session row written by the login a moment ago.
PRIMARY_ONLY_APPS = frozenset({"sessions"})


@dataclass
class _Scope:
    usable: bool  # a replica is configured and answered when the scope began
    wrote: bool = False


_scope: ContextVar[_Scope | None] = ContextVar("loyalty_replica_scope", default=None)
_pinned: ContextVar[bool] = ContextVar("loyalty_primary_pinned", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


_unreachable_until = 0.0  # per process (time.monotonic())
REPLICA_LAG_CHECK_SECONDS = 5
# Seconds since the last replayed commit while WAL the standby received waits for replay; 0 when it
# has replayed all it received (an idle primary writes nothing, and then nothing is behind).
REPLICA_LAG_SQL = ("SELECT CASE WHEN pg_last_wal_receive_lsn() IS NULL "
                   "OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
                   "ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8")


@dataclass
class _Lag:
    seconds: float = 0.0
    checked_at: float = float("-inf")  # time.monotonic()


_lag = _Lag()  # per process


def replica_lag_seconds() -> float:
    """How far the replica's replay is behind (raises DatabaseError if it cannot be reached)."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(REPLICA_LAG_SQL)
        return cursor.fetchone()[0]


def _replica_reachable() -> bool:
    """Connects (or keeps the open connection); a failure sends this process's reads to the
    primary for REPLICA_RETRY_SECONDS, a replay lag beyond the setting until it has caught up."""
    global _unreachable_until
    if time.monotonic() < _unreachable_until:
        return False
    try:
        connections[REPLICA].ensure_connection()
        return _replica_current()
    except DatabaseError:
        logger.warning("Read replica unreachable: reading the primary for %s s", REPLICA_RETRY_SECONDS,
                       exc_info=True)
        _unreachable_until = time.monotonic() + REPLICA_RETRY_SECONDS
        return False


def replica_too_far_behind(lag_seconds: float) -> bool:
    """The one rule for a lagging replica: not read (here) and reported (/healthz)."""
    return lag_seconds > settings.LOYALTY_REPLICA_MAX_LAG_SECONDS


def _replica_current() -> bool:
    now = time.monotonic()
    if now - _lag.checked_at >= REPLICA_LAG_CHECK_SECONDS:
        _lag.seconds, _lag.checked_at = replica_lag_seconds(), now
        if replica_too_far_behind(_lag.seconds):
            logger.warning("Read replica %.1f s behind: reading the primary", _lag.seconds)
    return not replica_too_far_behind(_lag.seconds)


def _replica_allowed() -> bool:
    scope = _scope.get()
    return (scope is not None and scope.usable and not scope.wrote and not _pinned.get()
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block)


def read_alias() -> str:
    """Where a read made now goes: for raw SQL (`connections[read_alias()].cursor()`) and for a
    queryset evaluated after the scope has ended (a streamed export: `queryset.using(alias)`)."""
    return REPLICA if _replica_allowed() else DEFAULT_DB_ALIAS


@contextmanager
def reading_replica() -> Iterator[str]:
    """Reads inside may go to the replica (see the module's rules); yields `read_alias()`.
    A nested scope is the outer one: a write in either keeps the rest on the primary."""
    if _scope.get() is not None:
        yield read_alias()
        return
    # Opened in a transaction or while pinned: the primary throughout, and no connection to the replica.
    usable = (replica_configured() and not _pinned.get() and not connections[DEFAULT_DB_ALIAS].in_atomic_block
              and _replica_reachable())
    token = _scope.set(_Scope(usable=usable))
    try:
        yield read_alias()
    finally:
        _scope.reset(token)


@contextmanager
def primary_pinned() -> Iterator[None]:
    """Every read inside goes to the primary, scopes or not."""
    token = _pinned.set(True)
    try:
        yield
    finally:
        _pinned.reset(token)


class ReplicaRouter:
    """settings.DATABASE_ROUTERS. Answers None (Django's default: the primary, or the database of
    the instance a related object is read through) unless a replica is configured."""

    def db_for_read(self, model, **hints) -> str | None:
        if not replica_configured():
            return None
        if model._meta.app_label in PRIMARY_ONLY_APPS:
            return DEFAULT_DB_ALIAS
        if _replica_allowed():
            return REPLICA
        # In a transaction, also a related object of an instance read from the replica.
        return DEFAULT_DB_ALIAS if connections[DEFAULT_DB_ALIAS].in_atomic_block else None

    def db_for_write(self, model, **hints) -> str | None:
        scope = _scope.get()
        if scope is not None:
            scope.wrote = True
        # Explicit: an object read from the replica is saved to the primary (Django would
        # otherwise write to the database the instance came from).
        return DEFAULT_DB_ALIAS if replica_configured() else None

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        databases = {DEFAULT_DB_ALIAS, REPLICA}
        if obj1._state.db in databases and obj2._state.db in databases:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
