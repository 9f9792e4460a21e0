"""Survey e-mails carry an unsubscribe link and the one-click headers, and their score links
wrap on a phone instead of a table row wider than the screen (#23)."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client

from feedback import services
from members.models import ConsentRecord
from members.services import consent_current, consent_given
from tests import factories
from tests.campaigns.test_campaigns_sending import consenting


def _sent_invitation():
    member = consenting(language="de")
    invitation = factories.SurveyInvitationFactory(survey=factories.SurveyFactory(), member=member)
    assert services.invitations_send(invitation_ids=[invitation.pk]) == 1
    return member, mail.outbox[-1]


def test_a_survey_mail_has_an_unsubscribe_link_and_one_click_headers(tiers, settings):
    settings.LOYALTY_PUBLIC_URL = "https://treuepunkt.example"
    _member, message = _sent_invitation()
    link = re.search(r"https://treuepunkt\.example/f/abmelden/\S+/", message.body).group(0)
    assert message.extra_headers["List-Unsubscribe"] == f"<{link}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in message.alternatives[0][0]


def test_the_one_click_post_withdraws_the_email_consent_once(tiers):
    member, message = _sent_invitation()
    path = re.search(r"https?://[^/\s]+(/f/abmelden/\S+/)", message.body).group(1)
    client = Client(enforce_csrf_checks=True)  # a mail client: no session, no CSRF token
    assert client.get(path).status_code == 200  # a link scanner's GET only asks
    assert consent_given(member, "email")
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not consent_given(member, "email")
    client.post(path)
    records = ConsentRecord.objects.filter(member=member, purpose="email", granted=False)
    assert records.count() == 1 and records.get().source == ConsentRecord.Source.UNSUBSCRIBE
    assert consent_current(member)["email"].granted is False


def test_a_forged_unsubscribe_token_changes_nothing(client, tiers):
    member, message = _sent_invitation()
    path = re.search(r"https?://[^/\s]+(/f/abmelden/\S+/)", message.body).group(1)
    assert client.post(path[:-3] + "xx/").status_code == 404
    assert consent_given(member, "email")


def test_the_score_links_wrap_instead_of_a_table_row_wider_than_a_phone(tiers):
    _member, message = _sent_invitation()
    html = message.alternatives[0][0]
    assert "<table" not in html
    assert html.count('style="display: inline-block;') == 11  # 0 … 10, each a button that wraps
