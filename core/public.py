"""The programme as members see it from outside: its name and its public address.

Links in e-mails (confirmation, password reset, unsubscribe, survey answers, raffle entry) start
with `LOYALTY_PUBLIC_URL`, never with the host a request happened to arrive on: a mail sent from a
worker, or from a request behind a proxy or on 127.0.0.1, must still point to the real portal.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings


def public_url(path: str = "") -> str:
    """`path` (e.g. "/konto/feedback/") under the public address, without a doubled slash."""
    return settings.LOYALTY_PUBLIC_URL.rstrip("/") + path


def public_host() -> str:
    """The public address's host (and port), as mails show it: "treuepunkt.example"."""
    return urlsplit(settings.LOYALTY_PUBLIC_URL).netloc


def programme_name() -> str:
    return settings.LOYALTY_PROGRAMME_NAME


def on_public_url(absolute_url: str) -> str:
    """The same path, query and fragment as `absolute_url`, on the public address."""
    parts = urlsplit(absolute_url)
    rest = parts.path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return public_url(rest)
