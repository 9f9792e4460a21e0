"""Surveys: invitations (throttle, sampling after purchases, segments), one-click links (once,
expired, tampered), answers, the reward paid once and the detractor's follow-up."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from feedback import links, services
from feedback.errors import InvalidScore, InvalidSurveyLink, InvitationUsed, SurveyClosed
from feedback.models import FollowUp, Response, Survey, SurveyInvitation
from members.services import consent_record
from rewards.models import PointEntry
from rewards.purchases import purchase_record
from tests import factories


@pytest.fixture
def queued(monkeypatch):
    """The Celery tasks queued by the services (run by hand where a test needs it)."""
    sent = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args, **kwargs: sent.append((task.name, args)))
    return sent


@pytest.fixture
def survey(db):
    return factories.SurveyFactory(reward_points=50)


def email_consent(member):
    consent_record(member=member, purpose="email", granted=True, source="portal", confirmed_at=timezone.now())


# --- Answers, rewards, follow-ups -----------------------------------------------------------------

def test_an_answer_pays_the_reward_once_per_member_and_survey(survey, member):
    services.response_record(survey_id=survey.pk, member_id=member.pk, score=9, channel="api")
    services.response_record(survey_id=survey.pk, member_id=member.pk, score=10, channel="api")
    member.refresh_from_db()
    entries = PointEntry.objects.filter(member=member, source="survey")
    assert entries.count() == 1 and entries.get().points == 50
    assert entries.get().reference == f"survey:{survey.pk}:{member.pk}"
    assert member.points_balance == 50
    assert Response.objects.filter(member=member).count() == 2


def test_another_survey_pays_again(survey, member):
    other = factories.SurveyFactory(reward_points=20)
    services.response_record(survey_id=survey.pk, member_id=member.pk, score=9, channel="api")
    services.response_record(survey_id=other.pk, member_id=member.pk, score=9, channel="api")
    member.refresh_from_db()
    assert member.points_balance == 70


def test_an_anonymous_answer_earns_nothing_and_keeps_no_member(survey):
    response = services.response_record(survey_id=survey.pk, score=10, channel="api")
    assert response.member is None and response.tier is None
    assert not PointEntry.objects.exists()


def test_the_answer_keeps_the_tier_at_the_time(survey, member):
    response = services.response_record(survey_id=survey.pk, member_id=member.pk, score=8, channel="portal")
    assert response.tier_id == member.tier_id is not None


@pytest.mark.parametrize("kind,score", [("nps", 11), ("nps", -1), ("csat", 0), ("csat", 6), ("ces", 8)])
def test_a_score_outside_the_scale_is_refused(db, kind, score):
    survey = factories.SurveyFactory(kind=kind)
    with pytest.raises(InvalidScore):
        services.response_record(survey_id=survey.pk, score=score, channel="api")
    assert not Response.objects.exists()


def test_an_inactive_survey_takes_no_answers(db):
    survey = factories.SurveyFactory(active=False)
    with pytest.raises(SurveyClosed):
        services.response_record(survey_id=survey.pk, score=5, channel="api")


@pytest.mark.parametrize("kind,score,expected", [
    ("nps", 0, True), ("nps", 6, True), ("nps", 7, False), ("nps", 10, False),
    ("csat", 1, True), ("csat", 2, True), ("csat", 3, False), ("ces", 1, False),
])
def test_detractors_and_unhappy_csat_answers_open_a_follow_up(db, settings, kind, score, expected):
    settings.LOYALTY_FOLLOW_UP_DUE_DAYS = 3
    survey = factories.SurveyFactory(kind=kind)
    now = timezone.now()
    response = services.response_record(survey_id=survey.pk, score=score, channel="api", now=now)
    assert FollowUp.objects.filter(response=response).exists() is expected
    if expected:
        follow_up = FollowUp.objects.get(response=response)
        assert follow_up.status == "open" and follow_up.due_at == now + timedelta(days=3)


def test_completing_a_follow_up_happens_once(db):
    survey = factories.SurveyFactory()
    response = services.response_record(survey_id=survey.pk, score=2, channel="api")
    staff = factories.StaffUserFactory()
    assert services.follow_up_complete(follow_up_id=response.follow_up.pk, staff_user=staff, note="Angerufen")
    assert not services.follow_up_complete(follow_up_id=response.follow_up.pk, staff_user=staff)
    response.follow_up.refresh_from_db()
    assert response.follow_up.status == "done" and response.follow_up.note == "Angerufen"


# --- Throttle and invitations -------------------------------------------------------------------

def test_a_member_is_invited_at_most_once_per_throttle_window(survey, member, settings, queued):
    settings.LOYALTY_SURVEY_THROTTLE_DAYS = 30
    other = factories.SurveyFactory()
    now = timezone.now()
    assert services.survey_invite(survey_id=survey.pk, member_id=member.pk, now=now) is not None
    assert services.survey_invite(survey_id=other.pk, member_id=member.pk, now=now + timedelta(days=29)) is None
    assert services.survey_invite(survey_id=other.pk, member_id=member.pk, now=now + timedelta(days=31)) is not None
    assert SurveyInvitation.objects.filter(member=member).count() == 2
    assert [name for name, _args in queued] == ["feedback.tasks.send_invitations"] * 2


def test_inactive_members_are_not_invited(survey, member, queued):
    from members.services import member_set_status

    member_set_status(member_id=member.pk, status="blocked")
    assert services.survey_invite(survey_id=survey.pk, member_id=member.pk) is None


def test_purchase_invitations_sample_the_buyers_of_the_day_n_days_ago(db, tiers, partner, base_rule, queued,
                                                                      settings):
    settings.LOYALTY_SURVEY_THROTTLE_DAYS = 30
    survey = factories.SurveyFactory(trigger=Survey.Trigger.PURCHASE, delay_days=3, sample_percent=100)
    never = factories.SurveyFactory(trigger=Survey.Trigger.PURCHASE, delay_days=3, sample_percent=0)
    now = timezone.now()
    three_days_ago = now - timedelta(days=3)
    buyers = [factories.enrolled_member() for _ in range(4)]
    for index, buyer in enumerate(buyers):
        purchase_record(member_id=buyer.pk, partner=partner, order_reference=f"O-{index}", amount=Decimal("10"),
                        occurred_at=three_days_ago)
    purchase_record(member_id=buyers[0].pk, partner=partner, order_reference="O-again", amount=Decimal("5"),
                    occurred_at=three_days_ago)  # two purchases, one invitation
    late = factories.enrolled_member()
    purchase_record(member_id=late.pk, partner=partner, order_reference="O-late", amount=Decimal("10"),
                    occurred_at=now - timedelta(days=1))
    asked = buyers[1]
    factories.SurveyInvitationFactory(member=asked, survey=factories.SurveyFactory(),
                                      created_at=now - timedelta(days=10))

    made = services.purchase_invitations_create(now=now)

    invited = set(SurveyInvitation.objects.filter(survey=survey).values_list("member_id", flat=True))
    assert invited == {buyers[0].pk, buyers[2].pk, buyers[3].pk}
    assert made == 3
    assert not SurveyInvitation.objects.filter(survey=never).exists()
    assert all(invitation.purchase_id for invitation in SurveyInvitation.objects.filter(survey=survey))
    # A rerun of the job invites nobody twice.
    assert services.purchase_invitations_create(now=now + timedelta(minutes=5)) == 0
    assert SurveyInvitation.objects.filter(survey=survey).count() == 3


def test_sampling_is_stable_and_roughly_the_share(db):
    survey = factories.SurveyFactory(sample_percent=20)
    draws = [services._sampled(survey, purchase_id) for purchase_id in range(1, 5001)]
    assert 0.17 < sum(draws) / len(draws) < 0.23
    assert draws == [services._sampled(survey, purchase_id) for purchase_id in range(1, 5001)]


def test_segment_invitations_skip_members_asked_recently(db, tiers, queued):
    segment = factories.SegmentFactory(name="Österreich")
    factories.SegmentConditionFactory(segment=segment, field="country", operator="in", value="AT")
    survey = factories.SurveyFactory(segment=segment)
    austrians = [factories.enrolled_member(country="AT") for _ in range(3)]
    factories.enrolled_member(country="DE")
    factories.SurveyInvitationFactory(member=austrians[0], survey=factories.SurveyFactory())
    assert services.segment_invitations_create(survey_id=survey.pk) == 2
    assert set(SurveyInvitation.objects.filter(survey=survey).values_list("member_id", flat=True)) == {
        austrians[1].pk, austrians[2].pk}
    assert services.segment_invitations_create(survey_id=survey.pk) == 0


def test_invitation_e_mails_need_consent_and_go_out_once(survey, tiers, settings):
    settings.LOYALTY_PUBLIC_URL = "https://treuepunkt.example"
    with_consent = factories.enrolled_member(first_name="Clara", language="en")
    email_consent(with_consent)
    without = factories.enrolled_member()
    ids = [factories.SurveyInvitationFactory(survey=survey, member=person).pk for person in (with_consent, without)]
    assert services.invitations_send(invitation_ids=ids) == 1
    assert services.invitations_send(invitation_ids=ids) == 0  # a redelivered task sends nothing twice
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [with_consent.email]
    assert "How likely are you to recommend us" in message.subject
    assert "Hello Clara," in message.body
    assert message.body.count("https://treuepunkt.example/f/a/") == 11  # one link per score 0-10
    assert "50 points" in message.body


# --- One-click links ----------------------------------------------------------------------------

@pytest.fixture
def invitation(survey, member):
    return factories.SurveyInvitationFactory(survey=survey, member=member)


def link(invitation, score):
    return reverse("feedback_links:answer", args=[links.answer_token(invitation.pk, score)])


def test_the_link_shows_the_chosen_score_and_records_it_on_post(client, invitation, member):
    url = link(invitation, 9)
    page = client.get(url)
    assert page.status_code == 200
    assert re.search(r'value="9"[^>]*checked', page.content.decode())
    assert not re.search(r'value="8"[^>]*checked', page.content.decode())
    assert not Response.objects.exists()  # a link scanner's GET answers nothing
    done = client.post(url, {"score": "9", "comment": "Sehr freundlich"})
    assert done.status_code == 200
    response = Response.objects.get()
    assert (response.score, response.comment, response.channel, response.member) == (9, "Sehr freundlich", "email",
                                                                                      member)
    invitation.refresh_from_db()
    assert invitation.answered_at is not None
    member.refresh_from_db()
    assert member.points_balance == 50


def test_a_link_answers_once_and_can_change_that_answer_for_a_week_only(client, invitation):
    assert client.post(link(invitation, 10), {"score": "10"}).status_code == 200
    assert client.post(link(invitation, 3), {"score": "3"}).status_code == 200  # a changed mind, same answer
    assert Response.objects.get().score == 3
    Response.objects.update(created_at=timezone.now() - timedelta(days=8))
    again = client.post(link(invitation, 5), {"score": "5"})
    assert again.status_code == 410
    assert client.get(link(invitation, 5)).status_code == 410
    assert Response.objects.count() == 1 and Response.objects.get().score == 3


def test_an_expired_link_is_refused(client, invitation, settings, monkeypatch):
    url = link(invitation, 8)
    settings.LOYALTY_SURVEY_LINK_DAYS = 14
    later = __import__("time").time() + 15 * 86400
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert client.get(url).status_code == 410
    assert client.post(url, {"score": "8"}).status_code == 410
    assert not Response.objects.exists()


def test_an_invitation_past_its_expiry_is_refused_even_with_a_fresh_link(client, invitation):
    SurveyInvitation.objects.filter(pk=invitation.pk).update(created_at=timezone.now() - timedelta(days=30),
                                                             expires_at=timezone.now() - timedelta(days=1))
    assert client.post(link(invitation, 8), {"score": "8"}).status_code == 410
    with pytest.raises(InvitationUsed):
        services.response_record(survey_id=invitation.survey_id, invitation_id=invitation.pk, score=8,
                                 channel="email")


def test_a_tampered_link_is_refused(client, invitation):
    token = links.answer_token(invitation.pk, 2)
    rest = token.split(":", 1)[1]
    forged = signing.b64_encode(b'{"i":%d,"s":10}' % invitation.pk).decode() + ":" + rest
    for bad in (forged, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "nonsense"):
        response = client.get(reverse("feedback_links:answer", args=[bad]))
        assert response.status_code == 404
    with pytest.raises(InvalidSurveyLink):
        links.answer_from_token(forged)
    assert not Response.objects.exists()


def test_a_link_names_its_own_invitation_only(survey, invitation, tiers):
    stranger = factories.enrolled_member()
    with pytest.raises(InvalidSurveyLink):
        services.response_record(survey_id=survey.pk, invitation_id=invitation.pk, member_id=stranger.pk, score=5,
                                 channel="portal")
    other_survey = factories.SurveyFactory()
    with pytest.raises(InvalidSurveyLink):
        services.response_record(survey_id=other_survey.pk, invitation_id=invitation.pk, score=5, channel="email")


def test_the_tasks_call_the_services(survey, member, settings, queued):
    from feedback import tasks

    settings.LOYALTY_SURVEY_THROTTLE_DAYS = 30
    assert tasks.invite_segment(survey.pk) == 1  # no segment: every active member
    invitation = SurveyInvitation.objects.get(member=member)
    assert tasks.send_invitations([invitation.pk]) == 0  # no e-mail consent: it waits in the portal
    assert tasks.invite_after_purchases() == 0
