"""Per-key rate limit: a fixed window counter in the shared cache, keyed by the API key id.

DRF's SimpleRateThrottle keeps a list of every request time in the cache and rewrites it on
each request: at thousands of requests per minute that list is the most expensive thing in
the request. A counter per window costs one `add` and one `incr`. The price is that a client
can send up to twice the rate across a window boundary, which is fine for abuse protection.

Rate: settings.LOYALTY_API_RATE ("<n>/<second|minute|hour|day>"), read on every request so a
change takes effect at once.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from .authentication import PartnerPrincipal

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    number, _, period = rate.partition("/")
    return int(number), _PERIODS[period.strip()[0].lower()]


class PartnerKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, PartnerPrincipal) or not settings.LOYALTY_API_RATE:
            return True
        limit, period = parse_rate(settings.LOYALTY_API_RATE)
        now = time.time()
        window = int(now // period)
        self._wait = (window + 1) * period - now
        cache_key = f"loyalty:api-throttle:{principal.key.pk}:{period}:{window}"
        if cache.add(cache_key, 1, timeout=period + 1):
            return True
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the window's counter expired between add and incr
            cache.add(cache_key, 1, timeout=period + 1)
            return True
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
