"""Errors of the feedback app (part of the core.errors hierarchy)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.errors import LoyaltyError


class InvalidScore(LoyaltyError):
    code = "invalid_score"
    default_message = _("The score must be between %(low)s and %(high)s.")
    http_status = 422


class SurveyClosed(LoyaltyError):
    code = "survey_closed"
    default_message = _("This survey is not open for answers.")
    http_status = 422


class InvitationUsed(LoyaltyError):
    """One answer for used and expired links: the member learns nothing else from it."""

    code = "invitation_used"
    default_message = _("This survey link has already been used or has expired.")
    http_status = 409


class InvalidSurveyLink(LoyaltyError):
    code = "invalid_survey_link"
    default_message = _("This survey link is not valid.")
    http_status = 400


class ComplaintStateError(LoyaltyError):
    code = "complaint_state"
    default_message = _("A complaint cannot go from %(from_status)s to %(to_status)s.")
    http_status = 409


class GoodwillAlreadyGranted(LoyaltyError):
    code = "goodwill_already_granted"
    default_message = _("This complaint has already received %(what)s.")
    http_status = 409


class AssigneeNotStaff(LoyaltyError):
    code = "assignee_not_staff"
    default_message = _("Only active staff users can be assigned.")
    http_status = 422
