"""Feedback in a real browser: the one-click link from a survey e-mail (no login), the member's
feedback page with a complaint, and the console's survey results with the NPS trend chart;
screenshots at phone and desktop width for review."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from feedback import links, services
from feedback.demo import seed_feedback_demo
from feedback.models import Response, Survey
from members.services import member_link_or_enrol
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_answer_link_portal_page_and_survey_results(page, live_server, screenshot, sign_in):
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    member = member_link_or_enrol(user=user, email="erika@example.org")
    survey = factories.SurveyFactory(reward_points=20)
    invitation = factories.SurveyInvitationFactory(survey=survey, member=member)

    # The e-mail's link for "9": no login needed; the click is the answer (the page sends it by
    # itself), and the member may add a comment afterwards.
    page.goto(live_server.url + reverse("feedback_links:answer", args=[links.answer_token(invitation.pk, 9)]))
    expect(page.get_by_test_id("answer-saved")).to_contain_text("9")
    expect(page.locator('input[name="score"][value="9"]')).to_be_checked()
    screenshot(page, "feedback-answer-link")
    page.get_by_label("Was ist der wichtigste Grund für Ihre Bewertung?").fill("Sehr nette Beratung")
    page.get_by_role("button", name=re.compile("Save changes|Änderungen speichern")).click()
    expect(page.get_by_test_id("answer-saved")).to_contain_text("9")
    assert Response.objects.get().comment == "Sehr nette Beratung"

    complaint = services.complaint_open(member_id=member.pk, category="product", subject="Mühle defekt",
                                        description="Nach einer Woche kaputt.", channel="portal")
    services.complaint_reply(complaint_id=complaint.pk, body="Wir schicken Ihnen eine neue Mühle.", staff_user=None)
    factories.SurveyInvitationFactory(survey=factories.SurveyFactory(kind="csat", question_de="Wie zufrieden waren "
                                                                     "Sie mit der Lieferung?"), member=member,
                                      created_at=timezone.now() - timedelta(days=1))
    sign_in(user)
    page.goto(live_server.url + reverse("feedback:portal"))
    expect(page.get_by_text("Mühle defekt")).to_be_visible()
    expect(page.get_by_text("Wie zufrieden waren Sie mit der Lieferung?")).to_be_visible()
    screenshot(page, "feedback-portal")
    page.goto(live_server.url + reverse("feedback:complaint", args=[complaint.pk]))
    expect(page.get_by_text("Wir schicken Ihnen eine neue Mühle.")).to_be_visible()
    screenshot(page, "feedback-complaint")

    seed_feedback_demo()
    page.context.clear_cookies()
    sign_in(factories.UserFactory(is_staff=True, is_superuser=True))
    nps = Survey.objects.get(name="NPS nach dem Einkauf")
    page.goto(live_server.url + reverse("admin:feedback_survey_change", args=[nps.pk]))
    expect(page.locator('[data-testid="survey-results"]')).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible()
    screenshot(page, "feedback-survey-results")
    page.goto(live_server.url + reverse("admin:feedback_complaint_changelist"))
    expect(page.get_by_text("Gutschein abgelehnt")).to_be_visible()
    screenshot(page, "feedback-complaint-queue")


def test_support_sees_the_detractors_contact_and_opens_the_member_from_the_follow_up_queue(
        page, live_server, screenshot, sign_in):
    from core.roles import ensure_group_permissions

    factories.tier_ladder()
    ensure_group_permissions()
    member = factories.enrolled_member(first_name="Lena", last_name="Neumann", email="lena@example.org",
                                       phone="+49 30 1234567")
    services.response_record(survey_id=factories.SurveyFactory().pk, member_id=member.pk, score=1,
                             comment="Zu lange gewartet", channel="api")
    sign_in(factories.staff_in("Support"))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(live_server.url + reverse("admin:feedback_followup_changelist"))
    expect(page.get_by_text("lena@example.org")).to_be_visible()
    expect(page.get_by_text("+49 30 1234567")).to_be_visible()
    screenshot(page, "feedback-follow-up-queue")
    page.get_by_role("link", name="Lena Neumann").click()
    expect(page).to_have_url(re.compile(reverse("admin:members_member_change", args=[member.pk])))


def test_clicking_a_score_in_the_mail_counts_the_answer_without_pressing_anything(page, live_server):
    factories.tier_ladder()
    invitation = factories.SurveyInvitationFactory(survey=factories.SurveyFactory())
    url = live_server.url + reverse("feedback_links:answer", args=[links.answer_token(invitation.pk, 4)])

    page.goto(url)

    expect(page.get_by_test_id("answer-saved")).to_contain_text("4")
    response = Response.objects.get()
    assert (response.score, response.invitation_id) == (4, invitation.pk)
    assert response.follow_up.status == "open"  # 4 is a detractor's score
    # Changed mind: 9 instead, on the same page; the follow-up is cancelled, the answer is one.
    page.locator('label:has(input[name="score"][value="9"])').click()
    page.get_by_role("button", name=re.compile("Save changes|Änderungen speichern")).click()
    expect(page.get_by_test_id("answer-saved")).to_contain_text("9")
    response.refresh_from_db()
    assert response.score == 9 and response.follow_up.status == "cancelled"
    assert Response.objects.count() == 1
    # Opening the link again shows the saved answer and sends nothing by itself.
    page.goto(url)
    expect(page.get_by_test_id("answer-saved")).to_contain_text("9")
    assert Response.objects.get().score == 9
