"""The fixed-window counters of core.ratelimit: on Redis one atomic command per count (the per-key
request rate runs on every partner API request), elsewhere Django's add/incr; the same counts
and the same stored values either way."""

from __future__ import annotations

from django.core.cache import cache, caches

from core.ratelimit import current_window, window_count_up


def _ttl(key: str) -> int:
    backend = caches["default"]
    full_key = backend.make_and_validate_key(key)
    return backend._cache.get_client(full_key).ttl(full_key)


def test_a_counter_counts_up_within_its_window_in_one_redis_command_per_count(redis_commands):
    window_count_up("test:other-counter", 60)  # a fresh Redis learns the script (EVALSHA, then EVAL) once
    redis_commands.clear()
    counts = [window_count_up("test:counter", 60) for _ in range(3)]
    assert counts == [1, 2, 3]
    assert redis_commands == ["EVALSHA"] * 3  # before: SET NX, EXISTS, INCRBY for every count after the first


def test_a_counter_expires_after_two_windows_and_reads_as_an_integer():
    window_count_up("test:counter", 60)
    window_count_up("test:counter", 60)
    assert 0 < _ttl("test:counter") <= 120
    assert cache.get("test:counter") == 2 and cache.get_many(["test:counter"]) == {"test:counter": 2}


def test_a_counter_works_after_redis_forgot_the_script():
    caches["default"]._cache.get_client(write=True).script_flush()
    assert window_count_up("test:counter", 60) == 1
    assert window_count_up("test:counter", 60) == 2


def test_a_counter_counts_the_same_on_a_cache_without_redis(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "ratelimit-test"}}
    assert [window_count_up("test:counter", 60) for _ in range(3)] == [1, 2, 3]
    assert cache.get("test:counter") == 3


def test_each_window_has_its_own_counter():
    first = current_window(60, at=1_800_000_010.0)
    second = current_window(60, at=1_800_000_070.0)
    assert window_count_up(first.key("test"), 60) == 1
    assert window_count_up(first.key("test"), 60) == 2
    assert window_count_up(second.key("test"), 60) == 1
