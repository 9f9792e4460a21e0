"""When a portal login's e-mail is verified, its remembered referral code becomes a referral."""

from __future__ import annotations

import logging

from django.utils import translation

from core.errors import LoyaltyError

from .models import ReferralClaim

logger = logging.getLogger(__name__)


def referral_for_confirmed_email(sender, request, email_address, **kwargs) -> None:
    """Receiver of allauth's `email_confirmed`. The member is found or enrolled by the same
    service members.adapters uses (idempotent), so the order of the receivers does not matter."""
    from members.services import member_link_or_enrol

    from . import services

    user = email_address.user
    claim = ReferralClaim.objects.filter(user=user).first()
    if claim is None or user.is_staff:
        return
    language = (getattr(request, "LANGUAGE_CODE", None) or translation.get_language() or "de")[:2]
    member = member_link_or_enrol(user=user, email=email_address.email, language=language)
    if member is None:
        return
    try:
        services.referral_attach(referee_id=member.pk, code=claim.code, channel=claim.channel,
                                 started_at=claim.started_at)
    except LoyaltyError as error:  # an expired link, no programme any more: the sign-up stands
        logger.info("Referral code of user %s not used: %s", user.pk, error)
    claim.delete()
