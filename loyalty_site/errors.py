"""One exception hierarchy for the domain, mapped in one place to API errors and admin messages.

Each error carries a stable `code` for API clients and a translated message for people.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class LoyaltyError(Exception):
    code = "loyalty_error"
    default_message = _("The request could not be carried out.")
    http_status = 400

    def __init__(self, message=None, **params):
        self.params = params
        self.message = message or self.default_message
        super().__init__(str(self.message))

    def __str__(self) -> str:
        return str(self.message) % self.params if self.params else str(self.message)


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    default_message = _("Not enough points: %(available)s available, %(requested)s needed.")
    http_status = 422


class MemberNotActive(LoyaltyError):
    code = "member_not_active"
    default_message = _("The member is not active (status: %(status)s).")
    http_status = 422


class DuplicateMember(LoyaltyError):
    code = "duplicate_member"
    default_message = _("A member with this %(field)s already exists.")
    http_status = 409


class InvalidPurchase(LoyaltyError):
    code = "invalid_purchase"
    default_message = _("The purchase is not valid: %(detail)s")


class InvalidReturn(LoyaltyError):
    code = "invalid_return"
    default_message = _("The return is not valid: %(detail)s")
    http_status = 422


class ReferenceConflict(LoyaltyError):
    code = "reference_conflict"
    default_message = _("The reference %(reference)s is already used for something else.")
    http_status = 409


class InvalidMerge(LoyaltyError):
    code = "invalid_merge"
    default_message = _("These members cannot be merged: %(detail)s")
    http_status = 422


class ReasonRequired(LoyaltyError):
    code = "reason_required"
    default_message = _("Please give a reason.")


class RewardUnavailable(LoyaltyError):
    code = "reward_unavailable"
    default_message = _("This reward cannot be redeemed: %(detail)s")
    http_status = 422


class VoucherInvalid(LoyaltyError):
    """One answer for unknown, used, expired and not-yet-valid codes: nothing to enumerate."""

    code = "voucher_invalid"
    default_message = _("This voucher code is not valid.")
    http_status = 422


class RateLimited(LoyaltyError):
    """Too many misses in a window (loyalty_site.ratelimit): raised with `seconds` to wait."""

    code = "rate_limited"
    default_message = _("Too many requests. Please try again in %(seconds)s seconds.")
    http_status = 429

    @property
    def retry_after(self) -> int:
        """For the API's Retry-After header."""
        return int(self.params.get("seconds", 60))


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
