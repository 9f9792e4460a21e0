"""The console's lists from the read replica, and the primary for a browser that just wrote.

With a replica configured (DATABASE_REPLICA_URL; core/db_router.py has the routing rules):

- a GET (or HEAD) of an admin changelist runs in `reading_replica()`, its template rendering
  included (the list's queries run while the page is rendered). Change forms, actions (POST),
  the dashboard page and everything outside the console read the primary;
- a request that may have written (any method but GET, HEAD, OPTIONS, TRACE) gets a cookie that
  pins this browser's reads to the primary for LOYALTY_REPLICA_STICKY_SECONDS: the staff user
  who saved a voucher and is redirected to the voucher list sees it, however far the replica
  lags. The cookie holds the moment it runs out; forging it can only send reads to the primary.

Without a replica the middleware passes the request on untouched.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from django.conf import settings
from django.urls import Resolver404, resolve

from core.db_router import primary_pinned, reading_replica, replica_configured

STICKY_COOKIE = "loyalty_primary_until"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LIST_METHODS = frozenset({"GET", "HEAD"})


class ReplicaReadsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        with ExitStack() as scopes:
            if wrote_recently(request):
                scopes.enter_context(primary_pinned())
            elif is_console_list(request):
                scopes.enter_context(reading_replica())
            response = self.get_response(request)
        if request.method not in SAFE_METHODS:
            stick_to_primary(response)
        return response


def wrote_recently(request) -> bool:
    try:
        return int(request.COOKIES.get(STICKY_COOKIE, "0")) > time.time()
    except ValueError:
        return False


def is_console_list(request) -> bool:
    """A GET of an admin changelist (`admin:<app>_<model>_changelist`). Only console paths are
    resolved (once more than Django does: the middleware runs before the URL resolution)."""
    if request.method not in LIST_METHODS or "/admin/" not in request.path_info:
        return False
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return match.namespace == "admin" and (match.url_name or "").endswith("_changelist")


def stick_to_primary(response) -> None:
    seconds = settings.LOYALTY_REPLICA_STICKY_SECONDS
    response.set_cookie(STICKY_COOKIE, str(int(time.time()) + seconds), max_age=seconds, httponly=True,
                        secure=settings.SESSION_COOKIE_SECURE, samesite="Lax")
