"""The share link /r/<code> remembers the referrer until sign-up.

Kept in the session and, for a visitor who comes back later in another session, in a signed
cookie. Privacy: the cookie is set only after the visitor followed a referral link, holds the
code and the time of the click and nothing else, is not readable by scripts, and lasts only as
long as the programme's attribution window: it serves the service the visitor asked for (being
credited as a referred friend), so it needs no consent banner (§ 25 (2) 2 TTDSG). It is never
used for tracking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core import signing
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

SESSION_KEY = "referral"
COOKIE_NAME = "treuepunkt_ref"
COOKIE_SALT = "referrals.link"


@dataclass(frozen=True)
class Remembered:
    code: str
    started_at: datetime


def remember(request, response: HttpResponse, *, code: str, max_age_days: int) -> None:
    now = timezone.now()
    request.session[SESSION_KEY] = {"code": code, "started_at": now.isoformat()}
    response.set_signed_cookie(COOKIE_NAME, f"{code}|{now.isoformat()}", salt=COOKIE_SALT,
                               max_age=max(1, max_age_days) * 86400, httponly=True, samesite="Lax",
                               secure=request.is_secure())


def remembered(request) -> Remembered | None:
    if request is None:
        return None
    stored = getattr(request, "session", {}).get(SESSION_KEY)
    if isinstance(stored, dict) and stored.get("code"):
        started_at = parse_datetime(stored.get("started_at") or "")
        return Remembered(code=stored["code"], started_at=started_at or timezone.now())
    try:
        value = request.get_signed_cookie(COOKIE_NAME, salt=COOKIE_SALT)
    except (KeyError, signing.BadSignature):
        return None
    code, _sep, when = value.partition("|")
    started_at = parse_datetime(when)
    return Remembered(code=code, started_at=started_at) if code and started_at else None


def forget(request) -> None:
    """After sign-up the session forgets the code; the cookie runs out with the window (a
    response to delete it on is not at hand where allauth calls us)."""
    if hasattr(request, "session"):
        request.session.pop(SESSION_KEY, None)
