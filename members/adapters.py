"""django-allauth glue for the member portal.

- After login, staff go to the console and members to their dashboard, in their language.
- When an e-mail address is verified (sign-up link, login code, staff in the admin), the user
  gets their member: an existing one with that address (from a till or an import) or a new one.
"""

from __future__ import annotations

import logging

from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse
from django.utils import translation

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
