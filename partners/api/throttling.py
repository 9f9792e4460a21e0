"""Per-key rate limit: a fixed window counter in the shared cache, keyed by the API key id
(core.ratelimit).

DRF's SimpleRateThrottle keeps a list of every request time in the cache and rewrites it on
each request: at thousands of requests per minute that list is the most expensive thing in
the request. A counter per window costs one `add` and one `incr`.

Rate: settings.LOYALTY_API_RATE ("<n>/<second|minute|hour|day>"), read on every request so a
change takes effect at once.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core.ratelimit import current_window, parse_rate, window_count_up

from .authentication import PartnerPrincipal

__all__ = ["PartnerKeyRateThrottle", "parse_rate"]


class PartnerKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, PartnerPrincipal) or not settings.LOYALTY_API_RATE:
            return True
        limit, period = parse_rate(settings.LOYALTY_API_RATE)
        window = current_window(period)
        self._wait = window.end - window.now
        return window_count_up(window.key(f"loyalty:api-throttle:{principal.key.pk}"), period) <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
