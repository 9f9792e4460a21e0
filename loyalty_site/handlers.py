"""The WSGI application: the partner API behind its own, shorter middleware chain.

Sessions, CSRF, messages, the language from the URL, allauth's login stages and the staff
console's second-factor check belong to the cookie-based pages. A till's request carries an API
key instead (DRF authenticates it, chooses the language from Accept-Language and the views are
CSRF-exempt), and those middleware cost a balance read about a fifth of its Python time. So
requests under API_PREFIX go to a second Django handler built from settings.API_MIDDLEWARE,
with the same URLs, views and error handling; everything else goes through settings.MIDDLEWARE.
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_PREFIX = "/api/v1/"


class PartnerAPIHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler builds its chain from settings.MIDDLEWARE; this runs once, when the process
        # starts, before any request is served.
        full_chain = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full_chain


def routed_application(pages=None):
    """A WSGI application: API_PREFIX to the partner API's handler, the rest to `pages`
    (a plain Django handler unless given, e.g. wrapped to serve static files in tests)."""
    pages = pages if pages is not None else WSGIHandler()
    api = PartnerAPIHandler()

    def application(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(API_PREFIX):
            return api(environ, start_response)
        return pages(environ, start_response)

    return application
