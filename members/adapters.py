"""django-allauth glue for the member portal.

- After login, staff go to the console and members to their dashboard, in their language.
- Account mails (confirmation, sign-in code, password reset, notices) speak for the programme:
  its name, and links on its public address (`LOYALTY_PUBLIC_URL`), not on the host the request
  came in on (allauth would write "user lena.neumann … on 127.0.0.1:8772").
- When an e-mail address is verified (sign-up link, login code, staff in the admin), the user
  gets their member: an existing one with that address (from a till or an import) or a new one.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse
from django.utils import translation

from core.public import on_public_url, programme_name, public_host, public_url

from . import services
from .models import Member

logger = logging.getLogger(__name__)


class PortalAccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request) -> str:
        user = request.user
        if user.is_staff:
            return reverse("admin:index")
        member = Member.objects.filter(user=user).only("language").first()
        language = member.language if member else translation.get_language()
        with translation.override(language):
            return reverse("portal:dashboard")

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        super().send_mail(template_prefix, email, {**_links_on_public_url(context), **programme_context()})


def programme_context() -> dict[str, Any]:
    """What account mails sign with; `current_site` for allauth's own templates."""
    name = programme_name()
    return {"programme_name": name, "public_url": public_url("/"),
            "current_site": SimpleNamespace(name=name, domain=public_host())}


def _links_on_public_url(context: dict[str, Any]) -> dict[str, Any]:
    """allauth builds its links (activate_url, password_reset_url, signup_url) from the request."""
    return {key: on_public_url(value) if key.endswith("_url") and str(value).startswith("http") else value
            for key, value in context.items()}


def member_for_confirmed_email(sender, request, email_address, **kwargs) -> None:
    """Receiver of allauth's `email_confirmed`: link or enrol the member behind this login."""
    user = email_address.user
    if user.is_staff:
        return
    language = (getattr(request, "LANGUAGE_CODE", None) or translation.get_language() or "de")[:2]
    # Staff marking the address verified in the console (allauth's admin action) enrol for them.
    acting = getattr(request, "user", None)
    via = "console" if getattr(acting, "is_staff", False) and acting.pk != user.pk else "portal"
    member = services.member_link_or_enrol(user=user, email=email_address.email, language=language, via=via)
    if member is not None and not member.email:
        logger.warning("Portal user %s got member %s without an e-mail: the address belongs to another login",
                       user.pk, member.pk)
