"""Survey e-mails and campaign messages share one frequency cap (#23): a survey mail counts as a
contact for campaigns, and a member at the cap gets no survey mail either."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.test import override_settings
from django.utils import timezone

from campaigns.models import Message
from feedback import services
from feedback.models import SurveyInvitation
from tests import factories
from tests.campaigns.test_campaigns_sending import consenting, new_campaign, send


@override_settings(LOYALTY_CAMPAIGN_CAP_MESSAGES=2, LOYALTY_CAMPAIGN_CAP_DAYS=7)
def test_a_survey_mail_counts_toward_the_campaign_cap(tiers):
    surveyed, fresh = consenting(), consenting()
    now = timezone.now()
    factories.MessageFactory(member=surveyed, status=Message.Status.SENT, claimed_at=now - timedelta(days=1))
    factories.SurveyInvitationFactory(member=surveyed, sent_at=now - timedelta(days=2))
    factories.MessageFactory(member=fresh, status=Message.Status.SENT, claimed_at=now - timedelta(days=1))
    campaign = new_campaign()
    report = send(campaign)
    assert report.sent == 1 and report.skipped == {"capped": 1}
    assert Message.objects.get(campaign=campaign, member=surveyed).skip_reason == Message.SkipReason.CAPPED


@override_settings(LOYALTY_CAMPAIGN_CAP_MESSAGES=2, LOYALTY_CAMPAIGN_CAP_DAYS=7)
def test_a_member_at_the_cap_gets_no_survey_mail(tiers):
    capped, fresh = consenting(), consenting()
    now = timezone.now()
    for days_ago in (1, 3):
        factories.MessageFactory(member=capped, status=Message.Status.SENT, claimed_at=now - timedelta(days=days_ago))
    survey = factories.SurveyFactory()
    ids = [factories.SurveyInvitationFactory(survey=survey, member=person).pk for person in (capped, fresh)]
    assert services.invitations_send(invitation_ids=ids) == 1
    assert [message.to for message in mail.outbox] == [[fresh.email]]
    assert SurveyInvitation.objects.get(member=capped, survey=survey).sent_at is None


@override_settings(LOYALTY_CAMPAIGN_CAP_MESSAGES=0)
def test_without_a_cap_surveys_go_out_whatever_was_sent(tiers):
    member = consenting()
    for _ in range(3):
        factories.MessageFactory(member=member, status=Message.Status.SENT, claimed_at=timezone.now())
    invitation = factories.SurveyInvitationFactory(survey=factories.SurveyFactory(), member=member)
    assert services.invitations_send(invitation_ids=[invitation.pk]) == 1
