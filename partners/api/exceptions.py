"""The one place where errors become API responses.

Every error has the same shape, whatever raised it (a domain `LoyaltyError`, a serializer, DRF's
authentication, permissions or throttling, Django's 404):

    {"code": "insufficient_points", "message": "Not enough points: …", "errors": {"field": ["…"]}}

`code` is stable for programs, `message` is in the language of the request's Accept-Language,
`errors` holds field errors (nested fields joined with dots: "lines.0.amount").
"""

from __future__ import annotations

import logging
import math

from django import db
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from core.errors import LoyaltyError, RateLimited

logger = logging.getLogger("loyalty_site.api")


# --- Errors of the API layer itself (domain errors live in each app's errors.py) -------------------

class IdempotencyKeyMissing(LoyaltyError):
    code = "idempotency_key_missing"
    default_message = gettext_lazy("This request changes data: send an Idempotency-Key header (1 to 255 "
                                   "printable characters) so that it can be retried safely.")
    http_status = 400


class IdempotencyKeyReused(LoyaltyError):
    code = "idempotency_key_reused"
    default_message = gettext_lazy("This Idempotency-Key was already used for a different request.")
    http_status = 422


class RequestInProgress(LoyaltyError):
    code = "request_in_progress"
    default_message = gettext_lazy("A request with this Idempotency-Key is still being processed. "
                                   "Please retry in a moment.")
    http_status = 409


class InvalidWebhookURL(LoyaltyError):
    code = "invalid_webhook_url"
    default_message = gettext_lazy("The webhook URL is not allowed: %(detail)s")
    http_status = 400


class PresenceRateLimited(RateLimited):
    """Too many look-ups by card number, customer number or member code matched nobody
    (members.presence): guessing numbers is stopped for the rest of the window."""

    code = "presence_rate_limited"
    default_message = gettext_lazy("Too many look-ups by card number, customer number or member code found no "
                                   "member. Please try again in %(seconds)s seconds.")


# --- The handler ---------------------------------------------------------------------------------

def error_body(code: str, message: str, errors: dict[str, list[str]] | None = None) -> dict:
    return {"code": code, "message": str(message), "errors": errors or {}}


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": [...], "lines.0.amount": [...]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in detail):
            if detail:
                flat[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def api_exception_handler(exc, context) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, LoyaltyError):
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return Response(error_body(exc.code, str(exc)), status=exc.http_status, headers=headers)

    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))

    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
        if isinstance(exc, exceptions.ValidationError):
            body = error_body("invalid", _("The request is not valid: please check the fields."),
                              flatten_errors(exc.detail))
        else:
            detail = exc.detail
            message = detail if not isinstance(detail, dict | list) else exc.default_detail
            code = getattr(detail, "code", None) or exc.default_code
            body = error_body(str(code), str(message))
        return Response(body, status=exc.status_code, headers=headers)

    if isinstance(exc, RequestDataTooBig):  # beyond DATA_UPLOAD_MAX_MEMORY_SIZE: refused unread
        return Response(error_body("too_large", _("The request body is too large.")),
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DATABASE_ERRORS):  # PostgreSQL down or restarting: retry later, safely
        return api_unavailable_response(context["request"])

    # Anything else is a bug: log it with its traceback and answer in the same shape.
    logger.exception("Unhandled error in the partner API", exc_info=exc)
    return Response(error_body("server_error", _("An unexpected error occurred. Please try again later.")),
                    status=status.HTTP_500_INTERNAL_SERVER_ERROR)


# --- PostgreSQL down or restarting ----------------------------------------------------------------

DATABASE_ERRORS = (db.OperationalError, db.InterfaceError)
RETRY_AFTER_SECONDS = 5
_unavailable_logger = logging.getLogger("loyalty_site")


def api_unavailable_response(request) -> JsonResponse:
    """503 with Retry-After in the API's shape: the till retries with the same Idempotency-Key.
    (The pages' answer, and Django's handler500 for both, are loyalty_site/unavailable.py.)"""
    _unavailable_logger.warning("Database unavailable while serving %s", request.path)
    response = JsonResponse(error_body(
        "unavailable", _("The service is briefly unavailable. Please retry with the same Idempotency-Key.")),
        status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@csrf_exempt  # API clients send no CSRF token: a PATCH to an unknown URL is a 404, not an HTML 403
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown URLs under /api/ answer in the API's shape too, not with an HTML page."""
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)
