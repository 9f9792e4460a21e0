"""Signed one-click links in survey e-mails: the invitation and the score, nothing to look up.

A link is `signing.dumps({"i": invitation id, "s": score})` with its own salt and a timestamp:
it cannot be changed (another score, another invitation) without the secret key, and it stops
working after LOYALTY_SURVEY_LINK_DAYS. That it works once is the invitation's business
(`answered_at`, set by compare-and-set when the answer is stored), not the link's.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from core.public import public_url

from .errors import InvalidSurveyLink, InvitationUsed

ANSWER = "feedback.answer"


def answer_token(invitation_id: int, score: int) -> str:
    return signing.dumps({"i": invitation_id, "s": score}, salt=ANSWER)


def answer_from_token(token: str) -> tuple[int, int]:
    """(invitation id, score); InvalidSurveyLink for a forged or mangled token, InvitationUsed
    for an expired one."""
    max_age = timedelta(days=settings.LOYALTY_SURVEY_LINK_DAYS)
    try:
        data = signing.loads(token, salt=ANSWER, max_age=max_age)
    except signing.SignatureExpired:
        raise InvitationUsed() from None
    except signing.BadSignature:
        raise InvalidSurveyLink() from None
    try:
        return int(data["i"]), int(data["s"])
    except (KeyError, TypeError, ValueError):
        raise InvalidSurveyLink() from None


def answer_url(invitation_id: int, score: int) -> str:
    path = reverse("feedback_links:answer", args=[answer_token(invitation_id, score)])
    return public_url(path)


# --- Unsubscribe ---------------------------------------------------------------------------------
# A survey e-mail is marketing mail too: it carries a one-click unsubscribe link (and the RFC 8058
# headers) that withdraws the e-mail consent. The token is the invitation id, signed with its own
# salt and no expiry: an unsubscribe link must keep working for as long as the mail is read.
UNSUBSCRIBE = "feedback.unsubscribe"


def unsubscribe_url(invitation_id: int) -> str:
    token = signing.Signer(salt=UNSUBSCRIBE).sign(str(invitation_id))
    return public_url(reverse("feedback_links:unsubscribe", args=[token]))


def invitation_from_unsubscribe_token(token: str) -> int:
    try:
        return int(signing.Signer(salt=UNSUBSCRIBE).unsign(token))
    except (signing.BadSignature, ValueError):
        raise InvalidSurveyLink() from None
