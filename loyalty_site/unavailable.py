"""When PostgreSQL is down or restarting, every request answers 503 with Retry-After instead of
a 500 page: tills and shops retry (the partner API's Idempotency-Key makes the retry safe), and
a member sees a "back in a moment" page. Whatever the request had begun is rolled back with its
transaction, so nothing half-written remains.
"""

from __future__ import annotations

import logging
import sys

from django import db
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.views.defaults import server_error

logger = logging.getLogger("loyalty_site")

RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (db.OperationalError, db.InterfaceError)


def database_unavailable_response(request) -> HttpResponse:
    logger.warning("Database unavailable while serving %s", request.path)
    if request.path.startswith("/api/"):
        from partners.api.exceptions import error_body

        response: HttpResponse = JsonResponse(error_body(
            "unavailable", _("The service is briefly unavailable. Please retry with the same Idempotency-Key.")),
            status=503)
    else:
        response = HttpResponse(loader.render_to_string("503.html", request=None), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handler500(request, *args, **kwargs):
    """Django's last resort for an uncaught error anywhere (a view or a middleware)."""
    error = sys.exc_info()[1]
    if isinstance(error, DATABASE_ERRORS):
        return database_unavailable_response(request)
    return server_error(request, *args, **kwargs)
