"""The feedback pages of the portal: surveys to answer, complaints to open and follow; a
member sees only their own (someone else's is a 404)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from feedback import services
from feedback.models import Complaint, Response
from members.services import member_link_or_enrol
from tests import factories


def _portal_member(email: str):
    user = factories.UserFactory(email=email)
    return member_link_or_enrol(user=user, email=email)


@pytest.fixture
def anna(tiers):
    return _portal_member("anna@example.org")


@pytest.fixture
def bernd(tiers):
    return _portal_member("bernd@example.org")


def bernds_complaint(bernd):
    return services.complaint_open(member_id=bernd.pk, category="product", subject="Bernds Reklamation",
                                   description="Bernds kaputte Kaffeemühle", channel="portal")


def test_the_navigation_shows_feedback(client, anna):
    client.force_login(anna.user)
    html = client.get(reverse("portal:dashboard")).content.decode()
    assert reverse("feedback:portal") in html


def test_the_feedback_page_lists_open_surveys_and_my_complaints(client, anna, bernd):
    survey = factories.SurveyFactory(question_en="How likely are you to recommend us?", reward_points=30)
    factories.SurveyInvitationFactory(survey=survey, member=anna)
    factories.SurveyInvitationFactory(survey=factories.SurveyFactory(question_en="Bernds Frage"), member=bernd)
    services.complaint_open(member_id=anna.pk, category="voucher", subject="Annas Gutschein",
                            description="geht nicht", channel="portal")
    bernds_complaint(bernd)
    client.force_login(anna.user)
    html = client.get("/en" + reverse("feedback:portal")).content.decode()
    assert "How likely are you to recommend us?" in html and "30 points for your answer" in html
    assert "Annas Gutschein" in html
    assert "Bernds" not in html


def test_a_member_answers_an_open_survey_in_the_portal(client, anna):
    survey = factories.SurveyFactory(reward_points=30)
    invitation = factories.SurveyInvitationFactory(survey=survey, member=anna)
    client.force_login(anna.user)
    url = reverse("feedback:answer", args=[invitation.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"score": "6", "comment": "Wartezeit zu lang"})
    assert response.status_code == 302
    answer = Response.objects.get()
    assert (answer.member, answer.score, answer.channel, answer.comment) == (anna, 6, "portal", "Wartezeit zu lang")
    assert hasattr(answer, "follow_up")
    anna.refresh_from_db()
    assert anna.points_balance == 30
    assert client.get(url).status_code == 404  # answered: no longer open


def test_a_member_cannot_answer_someone_elses_invitation(client, anna, bernd):
    invitation = factories.SurveyInvitationFactory(member=bernd)
    client.force_login(anna.user)
    url = reverse("feedback:answer", args=[invitation.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"score": "10"}).status_code == 404
    assert not Response.objects.exists()


def test_a_member_opens_a_complaint_and_follows_it(client, anna):
    client.force_login(anna.user)
    response = client.post(reverse("feedback:complaint_new"), {
        "category": "product", "subject": "Mühle defekt", "description": "Nach zwei Tagen kaputt."})
    complaint = Complaint.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("feedback:complaint", args=[complaint.pk])
    assert (complaint.member, complaint.channel, complaint.status) == (anna, "portal", "open")
    services.complaint_reply(complaint_id=complaint.pk, body="Wir tauschen die Mühle um.", staff_user=None)
    services.complaint_note(complaint_id=complaint.pk, body="Geheime interne Notiz", staff_user=None)
    services.complaint_set_status(complaint_id=complaint.pk, status="waiting")
    html = client.get("/en" + reverse("feedback:complaint", args=[complaint.pk])).content.decode()
    assert "Wir tauschen die Mühle um." in html and "waiting for customer" in html
    assert "Geheime interne Notiz" not in html
    client.post(reverse("feedback:complaint", args=[complaint.pk]), {"body": "Danke, passt."})
    complaint.refresh_from_db()
    assert complaint.status == "in_progress"
    assert complaint.messages.filter(kind="member", body="Danke, passt.").exists()


def test_member_a_cannot_see_or_write_to_member_bs_complaint(client, anna, bernd):
    complaint = bernds_complaint(bernd)
    client.force_login(anna.user)
    url = reverse("feedback:complaint", args=[complaint.pk])
    response = client.get(url)
    assert response.status_code == 404
    assert "Bernds" not in response.content.decode()
    assert client.post(url, {"body": "Ich bin nicht Bernd"}).status_code == 404
    assert not complaint.messages.exists()


def test_the_feedback_pages_need_a_login_and_turn_staff_away(client, anna):
    url = reverse("feedback:portal")
    assert client.get(url).status_code == 302
    client.force_login(factories.StaffUserFactory())
    assert client.get(url).status_code == 403


def test_a_complaint_form_with_errors_is_shown_again(client, anna):
    client.force_login(anna.user)
    response = client.post(reverse("feedback:complaint_new"), {"category": "weather", "subject": ""})
    assert response.status_code == 200
    assert not Complaint.objects.exists()
