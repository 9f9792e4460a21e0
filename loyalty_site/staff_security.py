"""Staff security in the console: a second factor when required, and an idle timeout.

Admin login itself goes through allauth (see urls.py), so it shares allauth's rate limits and
its MFA stage. This middleware adds what allauth leaves to the project: staff without a TOTP
authenticator are sent to set one up before they see any console page (when
LOYALTY_STAFF_MFA_REQUIRED is on), and a staff session idle for longer than
LOYALTY_STAFF_IDLE_SECONDS is ended.

The time of the last request is kept in the session, set when a staff member signs in (the
session is written then anyway) and written again only when it is a minute old (a tenth of the
timeout if that is shorter): every stored change of the session is a database write, which every
console page used to make. A session may so end up to that minute before the timeout, never
after it.
"""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.utils.translation import gettext as _

ADMIN_PATH = re.compile(r"^/(?:[a-z]{2}/)?admin/")
LAST_SEEN_KEY = "loyalty_staff_last_seen"
LAST_SEEN_REFRESH_SECONDS = 60


class StaffSecurityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        is_staff_in_console = (user is not None and user.is_authenticated and user.is_staff
                               and ADMIN_PATH.match(request.path))
        if is_staff_in_console and (response := self._check(request, user)):
            return response
        return self.get_response(request)

    def _check(self, request, user):
        now = time.time()
        last_seen = request.session.get(LAST_SEEN_KEY)
        if last_seen is not None and now - last_seen > settings.LOYALTY_STAFF_IDLE_SECONDS:
            logout(request)
            messages.info(request, _("You were signed out after a period of inactivity."))
            return redirect_to_login(request.get_full_path())
        if last_seen is None or now - last_seen >= _refresh_seconds():
            request.session[LAST_SEEN_KEY] = now
        if settings.LOYALTY_STAFF_MFA_REQUIRED and not _has_second_factor(user):
            messages.warning(request, _("Staff accounts need a second factor. Please set up an authenticator app."))
            return redirect("mfa_activate_totp")
        return None


def stamp_staff_sign_in(sender, request, user, **kwargs) -> None:
    """user_logged_in receiver (LoyaltySiteConfig.ready): the idle time runs from the sign-in."""
    if user.is_staff and request is not None and hasattr(request, "session"):
        request.session[LAST_SEEN_KEY] = time.time()


def _refresh_seconds() -> float:
    return min(LAST_SEEN_REFRESH_SECONDS, settings.LOYALTY_STAFF_IDLE_SECONDS / 10)


def _has_second_factor(user) -> bool:
    from allauth.mfa.utils import is_mfa_enabled

    return is_mfa_enabled(user)
