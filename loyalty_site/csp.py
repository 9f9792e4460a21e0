"""Content Security Policy.

Everything the pages use is served by this site (no CDN): the portal's own CSS and JavaScript,
unfold's Alpine.js, htmx and Chart.js, Swagger UI from drf-spectacular's sidecar. So the policy
is strict (settings.CONTENT_SECURITY_POLICY, django-csp): every source is 'self', no inline
script or style, no plugins, no <base> elsewhere, no framing, forms post only here.

A third-party page that cannot work within it gets an exception for its paths only, in
PATH_EXCEPTIONS with the reason; our own templates keep their scripts and styles in static files.
The partner API answers JSON that no browser should ever render or frame: it gets the tightest
policy, a constant header from a tiny middleware (the API's chain is kept short on purpose,
loyalty_site/handlers.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from csp.constants import UNSAFE_EVAL, UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from .handlers import API_PREFIX

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
API_DIRECTIVES = {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}


def _under_language_prefix(path: str) -> re.Pattern[str]:
    """A path of i18n_patterns under any language prefix (/admin/, /en/admin/)."""
    languages = "|".join(re.escape(code) for code, _name in settings.LANGUAGES)
    return re.compile(rf"^/(?:(?:{languages})/)?{re.escape(path)}")


# (path pattern, directives that replace the strict policy's there, why). Keep each narrow.
PATH_EXCEPTIONS: list[tuple[re.Pattern[str], dict[str, list[str]], str]] = [
    (_under_language_prefix("admin/"), {"script-src": ["'self'", UNSAFE_EVAL], "style-src": ["'self'", UNSAFE_INLINE]},
     "django-unfold loads the standard build of Alpine.js, which turns the x-data/x-on/x-bind "
     "expressions of unfold's templates (assignments, conditions, calls with arguments) into "
     "functions with new Function(): 'unsafe-eval'. Alpine's CSP build cannot run those expressions. "
     "unfold's templates also write <style> elements (theme colours) and style attributes: "
     "'unsafe-inline' for styles only, never for scripts."),
    (_under_language_prefix("accounts/2fa/"), {"img-src": ["'self'", "data:"]},
     "django-allauth shows the authenticator app's QR code as a data: SVG image."),
    (re.compile(r"^/api/docs/"), {"img-src": ["'self'", "data:"]},
     "Swagger UI (drf-spectacular's sidecar) draws its icons as data: SVG images from its bundle."),
]


def exceptions_for(path: str) -> dict[str, list[str]] | None:
    for pattern, directives, _why in PATH_EXCEPTIONS:
        if pattern.match(path):
            return directives
    return None


class PageContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the path exceptions above replacing directives of the strict policy."""

    def get_policy_parts(self, request: HttpRequest, response: HttpResponseBase,
                         report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        if request.path_info.startswith(API_PREFIX):  # the API through the full chain (the test client)
            parts.config = API_DIRECTIVES
        elif parts.replace is None:
            parts.replace = exceptions_for(request.path_info)
        return parts


class APIContentSecurityPolicyMiddleware:
    """The partner API's constant policy: a JSON answer loads nothing and is never framed."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", API_POLICY)
        return response
