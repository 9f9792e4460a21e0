"""Fixed-window counters in the shared cache: the one implementation behind the per-key request
rate (partners.api.throttling), the voucher code miss limit (rewards.vouchers) and the
presence miss limit (members.presence).

The window's start is part of the cache key, so a counter never needs resetting, and a cache
whose `incr` does not keep the expiry (the file cache) still counts per window. On Redis a count
is one command (a short Lua script: INCR, and EXPIRE on the first count, atomically): the per-key
request rate runs on every partner API request, and Django's `add` + `incr` (which checks EXISTS
first) took three round trips, 15 % of a balance read's CPU.
Other caches: one `add` (and one `incr` after the first count). The price of fixed windows is that
a client can get up to twice the limit across a window boundary, which is fine for abuse protection.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import NoScriptError

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """"30/minute" → (30, 60). Raises ValueError (or KeyError) on anything else."""
    number, _, period = rate.partition("/")
    return int(number), _PERIODS[period.strip()[0].lower()]


@dataclass(frozen=True)
class Window:
    start: int  # unix time the window began
    period: int  # seconds
    now: float

    @property
    def end(self) -> int:
        return self.start + self.period

    @property
    def seconds_left(self) -> int:
        """For Retry-After: whole seconds, at least one."""
        return max(1, math.ceil(self.end - self.now))

    def key(self, prefix: str) -> str:
        return f"{prefix}:{self.period}:{self.start}"


def now() -> float:
    """Unix time, as the windows count it (one place for tests to move the clock)."""
    return time.time()


def current_window(period: int, at: float | None = None) -> Window:
    at = now() if at is None else at
    return Window(start=int(at // period) * period, period=period, now=at)


def window_count_up(key: str, period: int) -> int:
    """Count one in the window's counter `key` and return the new count."""
    backend = caches[DEFAULT_CACHE_ALIAS]  # `cache` is a proxy: isinstance needs the backend itself
    if isinstance(backend, RedisCache):
        return _redis_count_up(backend, key, timeout=2 * period)
    if cache.add(key, 1, timeout=2 * period):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window's counter expired between add and incr
        cache.add(key, 1, timeout=2 * period)
        return 1


# Atomic in Redis: a counter never lives without its expiry. The value is a plain integer, as
# Django's Redis cache stores integers, so `cache.get` / `get_many` read it as before.
_COUNT_UP_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


_COUNT_UP_SHA = hashlib.sha1(_COUNT_UP_SCRIPT.encode(), usedforsecurity=False).hexdigest()  # Redis names scripts so


def _redis_count_up(backend: RedisCache, key: str, *, timeout: int) -> int:
    full_key = backend.make_and_validate_key(key)
    client = backend._cache.get_client(full_key, write=True)  # Django's redis-py client
    try:
        return client.evalsha(_COUNT_UP_SHA, 1, full_key, timeout)
    except NoScriptError:  # a new or restarted server: EVAL runs it and keeps it for EVALSHA
        return client.eval(_COUNT_UP_SCRIPT, 1, full_key, timeout)
