"""Errors of the offers app (part of the core.errors hierarchy)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.errors import LoyaltyError


class CouponNotFound(LoyaltyError):
    code = "coupon_not_found"
    default_message = _("This coupon does not exist.")
    http_status = 404


class CouponNotActivatable(LoyaltyError):
    code = "coupon_not_activatable"
    default_message = _("This coupon cannot be activated: %(detail)s")
    http_status = 409


class InvalidOffer(LoyaltyError):
    code = "invalid_offer"
    default_message = _("The coupon is not set up correctly: %(detail)s")
    http_status = 400
