"""OpenAPI: every operation documents the API's error responses with the one error shape."""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.views import SpectacularAPIView

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error looks like this.",
    "properties": {
        "code": {"type": "string", "description": "Stable, for programs: e.g. invalid, not_found, "
                                                  "insufficient_points, idempotency_key_reused."},
        "message": {"type": "string", "description": "For people, in the language of Accept-Language."},
        "errors": {"type": "object", "description": "Field errors; nested fields are joined with dots "
                                                    "(lines.0.amount).",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["code", "message", "errors"],
}

_ALWAYS = {
    "400": "Bad input (see `errors`).",
    "401": "No API key, or not a valid one.",
    "403": "The API key lacks the scope.",
    "404": "Not found, or outside the caller's reach.",
    "429": "Too many requests: retry after `Retry-After` seconds.",
}
_WRITES = {
    "409": "Conflict: the same Idempotency-Key is still running, or a reference is taken.",
    "422": "Refused: e.g. not enough points, or the Idempotency-Key was used for another request.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = dict(_ALWAYS)
            if method in ("post", "put", "patch", "delete"):
                codes.update(_WRITES)
            for code, description in codes.items():
                response = {"description": description, "content": content}
                if code == "429":
                    response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                           "description": "Seconds to wait."}}
                operation["responses"].setdefault(code, response)
    return result


class SchemaView(SpectacularAPIView):
    """The schema in English unless `?lang=` asks for another language: one stable document for
    client generators, whatever language the server defaults to."""

    def _get_schema_response(self, request):
        with translation.override(request.GET.get("lang") or "en"):
            return super()._get_schema_response(request)
