"""Errors of the campaigns app (part of the core.errors hierarchy)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.errors import LoyaltyError


class InvalidCondition(LoyaltyError):
    code = "invalid_segment_condition"
    default_message = _("This segment condition is not valid: %(detail)s")
    http_status = 422


class InvalidTemplate(LoyaltyError):
    code = "invalid_message_template"
    default_message = _("The message text is not a valid template: %(detail)s")
    http_status = 422


class TemplateTooLarge(InvalidTemplate):
    """A text that compiles but renders past the bounds of campaigns.rendering."""

    code = "message_template_too_large"
    default_message = _("The message text cannot be rendered: %(detail)s. Please simplify it.")
    http_status = 422


class CampaignStateError(LoyaltyError):
    code = "campaign_state"
    default_message = _("This is not possible while the campaign is %(status)s.")
    http_status = 409


class CampaignNotReady(LoyaltyError):
    code = "campaign_not_ready"
    default_message = _("The campaign cannot start yet: %(detail)s")
    http_status = 422


class RaffleClosed(LoyaltyError):
    code = "raffle_closed"
    default_message = _("This raffle is not open for entries: %(detail)s")
    http_status = 422


class InvalidLink(LoyaltyError):
    code = "invalid_link"
    default_message = _("This link is not valid.")
    http_status = 400


class TestAddressMissing(LoyaltyError):
    code = "test_address_missing"
    default_message = _("Your user account has no e-mail address: add one to your profile to receive a test.")
