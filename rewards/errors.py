"""Errors of the rewards app: points, purchases, returns, vouchers (part of the core.errors hierarchy)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.errors import LoyaltyError, RateLimited


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    default_message = _("Not enough points: %(available)s available, %(requested)s needed.")
    http_status = 422


class InvalidPurchase(LoyaltyError):
    code = "invalid_purchase"
    default_message = _("The purchase is not valid: %(detail)s")


class InvalidReturn(LoyaltyError):
    code = "invalid_return"
    default_message = _("The return is not valid: %(detail)s")
    http_status = 422


class RewardUnavailable(LoyaltyError):
    code = "reward_unavailable"
    default_message = _("This reward cannot be redeemed: %(detail)s")
    http_status = 422


class VoucherInvalid(LoyaltyError):
    """One answer for unknown, used, expired and not-yet-valid codes: nothing to enumerate."""

    code = "voucher_invalid"
    default_message = _("This voucher code is not valid.")
    http_status = 422


class VoucherRateLimited(RateLimited):
    code = "voucher_rate_limited"
    default_message = _("Too many invalid voucher codes. Please try again in %(seconds)s seconds.")


class VoucherNotCancellable(LoyaltyError):
    code = "voucher_not_cancellable"
    default_message = _("Only an unused voucher that has not expired can be cancelled.")
    http_status = 409


class StoreNotOfPartner(LoyaltyError):
    code = "store_not_of_partner"
    default_message = _("This store belongs to another partner.")
    http_status = 422


class AdjustmentTooLarge(LoyaltyError):
    code = "adjustment_too_large"
    default_message = _("Adjustments above %(limit)s points need an administrator.")
    http_status = 403


class DailyAdjustmentLimitReached(LoyaltyError):
    code = "daily_adjustment_limit_reached"
    default_message = _("You have booked %(booked)s points by hand today; your daily limit is %(limit)s points. "
                        "More needs an administrator.")
    http_status = 403


class MembershipTierNotOverridable(LoyaltyError):
    code = "membership_tier_not_overridable"
    default_message = _("%(tier)s is held through a paid or invitation membership, not set by an override.")
    http_status = 422


class InvalidMembership(LoyaltyError):
    code = "invalid_membership"
    default_message = _("The membership is not valid: %(detail)s")
    http_status = 422


class DonationNotCancellable(LoyaltyError):
    code = "donation_not_cancellable"
    default_message = _("Only a donation of the running month that is not cancelled yet can be cancelled: "
                        "earlier months are paid out.")
    http_status = 409
