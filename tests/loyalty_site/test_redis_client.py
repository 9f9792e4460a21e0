"""The shared cache answers every partner API request (core.shared_version): its replies are
parsed by hiredis's C parser, not redis-py's Python one (a tenth of a balance read's CPU)."""

from __future__ import annotations

from django.core.cache import cache
from redis._parsers import _HiredisParser


def test_the_cache_reads_redis_replies_with_hiredis():
    cache.set("parser-check", 1)
    pool = cache._cache.get_client().connection_pool
    connection = pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser)
    finally:
        pool.release(connection)
