"""When PostgreSQL is down or restarting, every request answers 503 with Retry-After instead of
a 500 page: tills and shops retry (the partner API's Idempotency-Key makes the retry safe), and
a member sees a "back in a moment" page. Whatever the request had begun is rolled back with its
transaction, so nothing half-written remains.
"""

from __future__ import annotations

import logging
import sys

from django.http import HttpResponse
from django.template import loader
from django.views.defaults import server_error

from partners.api.exceptions import DATABASE_ERRORS, RETRY_AFTER_SECONDS, api_unavailable_response

logger = logging.getLogger("loyalty_site")


def database_unavailable_response(request) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_unavailable_response(request)  # the API's error shape
    logger.warning("Database unavailable while serving %s", request.path)
    response = HttpResponse(loader.render_to_string("503.html", request=None), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handler500(request, *args, **kwargs):
    """Django's last resort for an uncaught error anywhere (a view or a middleware)."""
    error = sys.exc_info()[1]
    if isinstance(error, DATABASE_ERRORS):
        return database_unavailable_response(request)
    return server_error(request, *args, **kwargs)
