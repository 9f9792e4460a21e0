"""Errors of the referrals app (part of the core.errors hierarchy)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.errors import LoyaltyError


class ReferralCodeInvalid(LoyaltyError):
    code = "referral_code_invalid"
    default_message = _("This referral code is not valid.")
    http_status = 422


class ReferralNotAllowed(LoyaltyError):
    code = "referral_not_allowed"
    default_message = _("This referral cannot be recorded: %(detail)s")
    http_status = 422


class ReferralTransitionInvalid(LoyaltyError):
    code = "referral_transition_invalid"
    default_message = _("The referral is %(status)s and cannot be changed this way.")
    http_status = 409
