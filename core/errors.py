"""The base of every domain error, and the errors that belong to no one domain.

Each error carries a stable `code` for API clients (a contract: never change one) and a
translated message for people. Domain errors live in their app's `errors.py` (members/errors.py,
rewards/errors.py, ...) and subclass `LoyaltyError`; they are mapped in one place to API errors
and to admin messages.
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


class ReferenceConflict(LoyaltyError):
    code = "reference_conflict"
    default_message = _("The reference %(reference)s is already used for something else.")
    http_status = 409


class ReasonRequired(LoyaltyError):
    code = "reason_required"
    default_message = _("Please give a reason.")


class RateLimited(LoyaltyError):
    """Too many misses in a window (core.ratelimit): raised with `seconds` to wait."""

    code = "rate_limited"
    default_message = _("Too many requests. Please try again in %(seconds)s seconds.")
    http_status = 429

    @property
    def retry_after(self) -> int:
        """For the API's Retry-After header."""
        return int(self.params.get("seconds", 60))
