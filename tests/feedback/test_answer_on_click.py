"""The score links of survey e-mails count the member at the click: the page's script POSTs the
clicked score (a link scanner's GET records nothing), and the member may change the score or
add a comment afterwards. A change keeps what depends on the answer consistent: one response
(the latest score in the NPS), one reward, one SurveyAnswered event, and a follow-up task that
is opened when the answer becomes unhappy and cancelled (kept, with a note) when it stops being."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from core.events import capture
from feedback import links, metrics, services
from feedback.errors import InvitationUsed
from feedback.events import SurveyAnswered
from feedback.models import FollowUp, Response
from rewards.models import PointEntry
from tests import factories

GERMAN = Path(__file__).resolve().parents[2] / "locale" / "de" / "LC_MESSAGES" / "django.po"


@pytest.fixture
def invitation(tiers):
    return factories.SurveyInvitationFactory(survey=factories.SurveyFactory(reward_points=50))


def link(invitation, score: int) -> str:
    return reverse("feedback_links:answer", args=[links.answer_token(invitation.pk, score)])


def answer(client, invitation, score: int, comment: str = "", **extra):
    return client.post(link(invitation, score), {"score": str(score), "comment": comment, **extra})


def test_a_scanners_get_of_the_link_records_nothing(client, invitation):
    page = client.get(link(invitation, 9))
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-auto-answer" in html and "feedback/answer_link.js" in html  # the browser sends it
    assert "<script>" not in html  # the CSP allows no inline script
    assert not Response.objects.exists()
    invitation.refresh_from_db()
    assert invitation.answered_at is None


def test_the_automatic_post_of_the_clicked_score_records_it_and_says_so(client, invitation):
    page = answer(client, invitation, 9, first="1")  # what answer_link.js sends: the form as shown
    assert page.status_code == 200
    assert "Thank you – your score 9 is saved" in page.content.decode()
    response = Response.objects.get()
    assert (response.score, response.channel, response.changed_at) == (9, "email", None)
    assert re.search(r'value="9"[^>]*checked', page.content.decode())  # still changeable on the page


def test_a_second_post_changes_the_same_response_and_cancels_then_reopens_the_follow_up(client, invitation):
    answer(client, invitation, 3, first="1")
    response = Response.objects.get()
    follow_up = FollowUp.objects.get(response=response)
    assert follow_up.status == FollowUp.Status.OPEN

    page = answer(client, invitation, 9, "Doch sehr zufrieden")
    assert "Thank you – your score 9 is saved" in page.content.decode()
    response.refresh_from_db()
    assert (response.score, response.comment) == (9, "Doch sehr zufrieden")
    assert response.changed_at is not None
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUp.Status.CANCELLED and follow_up.done_at is not None
    assert "9" in follow_up.note  # the note says why; the task is kept, not deleted

    answer(client, invitation, 2, "Doch nicht")
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUp.Status.OPEN and follow_up.done_at is None
    assert FollowUp.objects.count() == 1 and Response.objects.count() == 1


def test_a_change_to_an_unhappy_score_opens_a_follow_up(client, invitation):
    answer(client, invitation, 10, first="1")
    assert not FollowUp.objects.exists()
    answer(client, invitation, 4)
    assert FollowUp.objects.get().status == FollowUp.Status.OPEN


def test_a_follow_up_support_has_done_stays_done(client, invitation):
    answer(client, invitation, 1, first="1")
    follow_up = FollowUp.objects.get()
    services.follow_up_complete(follow_up_id=follow_up.pk, staff_user=None, note="Angerufen")
    answer(client, invitation, 9)
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUp.Status.DONE and follow_up.note == "Angerufen"


def test_the_nps_counts_the_latest_score_once_and_the_reward_and_event_stay_once(client, invitation):
    member = invitation.member
    with capture() as events:
        answer(client, invitation, 2, first="1")
        answer(client, invitation, 10)
        answer(client, invitation, 10, "Super")
    assert metrics.summarize(Response.objects.all(), "nps").answers == 1
    assert metrics.nps(Response.objects.all()) == 100.0
    assert sum(isinstance(event, SurveyAnswered) for event in events) == 1
    assert PointEntry.objects.filter(member=member, source="survey").count() == 1


def test_the_first_pages_empty_comment_box_keeps_the_comment_given(client, invitation):
    """The automatic POST and a press of the first page's button can both arrive: the second
    one is a change, and its empty comment box must not erase the comment sent with the first."""
    answer(client, invitation, 7, "Gute Beratung", first="1")
    answer(client, invitation, 7, first="1")
    assert Response.objects.get().comment == "Gute Beratung"
    answer(client, invitation, 7, "")  # the saved page's own box, emptied on purpose
    assert Response.objects.get().comment == ""


def test_a_get_after_answering_shows_the_saved_answer_and_changes_nothing(client, invitation):
    answer(client, invitation, 8, "Gut", first="1")
    page = client.get(link(invitation, 3)).content.decode()
    assert "Thank you – your score 8 is saved" in page
    assert "data-auto-answer" not in page  # a change is never sent by itself
    assert Response.objects.get().score == 8


def test_a_change_after_the_change_period_is_refused_and_changes_nothing(client, invitation, settings):
    settings.LOYALTY_SURVEY_CHANGE_DAYS = 7
    answer(client, invitation, 3, first="1")
    Response.objects.update(created_at=timezone.now() - timedelta(days=7, minutes=1))
    assert answer(client, invitation, 9).status_code == 410
    assert Response.objects.get().score == 3
    with pytest.raises(InvitationUsed):
        services.response_change(invitation_id=invitation.pk, score=9)
    assert FollowUp.objects.get().status == FollowUp.Status.OPEN


def test_an_invalid_changed_score_is_refused_and_changes_nothing(client, invitation):
    answer(client, invitation, 6, first="1")
    page = client.post(link(invitation, 6), {"score": "11", "comment": ""})
    assert page.status_code == 200 and page.context["form"].errors["score"]
    assert Response.objects.get().score == 6


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is installed by scripts/system-deps.sh")
def test_the_german_page_says_the_score_is_saved(client, invitation, tmp_path, settings):
    target = tmp_path / "locale" / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    subprocess.run(["msgfmt", "-o", str(target / "django.mo"), str(GERMAN)], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    invitation.member.language = "de"
    invitation.member.save(update_fields=["language"])
    page = answer(client, invitation, 9, first="1").content.decode()
    assert "Danke – Ihre Bewertung 9 ist gespeichert" in page
    assert "Änderungen speichern" in page
