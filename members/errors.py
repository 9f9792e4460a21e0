"""Errors of the members app (part of the core.errors hierarchy)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.errors import LoyaltyError


class MemberNotActive(LoyaltyError):
    code = "member_not_active"
    default_message = _("The member is not active (status: %(status)s).")
    http_status = 422


class DuplicateMember(LoyaltyError):
    code = "duplicate_member"
    default_message = _("A member with this %(field)s already exists.")
    http_status = 409


class InvalidMerge(LoyaltyError):
    code = "invalid_merge"
    default_message = _("These members cannot be merged: %(detail)s")
    http_status = 422


class WalletUnavailable(LoyaltyError):
    """A wallet pass asked for while that wallet is not set up, or its credentials fail
    (members.wallet): `status` says which; the portal shows a page, never an error."""

    code = "wallet_unavailable"
    default_message = _("%(wallet)s is not available.")
    http_status = 404

    def __init__(self, status):
        self.status = status
        super().__init__(wallet=status.wallet)


class PushRefused(LoyaltyError):
    """A device's push subscription that can't be accepted (members.push); the message says why."""

    code = "push_refused"
    default_message = _("Push notifications could not be switched on for this device.")
    http_status = 422
