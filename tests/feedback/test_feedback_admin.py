"""The feedback console: pages render with a number of queries that does not grow with the
rows, survey results and trend, the queues with overdue rows marked, complaint work through
the services (reply by e-mail, goodwill once), and the staff roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.roles import ensure_group_permissions
from feedback import services
from feedback.models import Complaint, FollowUp, Response
from tests import factories


@pytest.fixture
def superuser(db):
    return factories.UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(context.captured_queries)


def add_feedback(count: int, partner) -> None:
    survey = factories.SurveyFactory()
    store = factories.StoreFactory(partner=partner)
    for index in range(count):
        member = factories.enrolled_member()
        services.response_record(survey_id=survey.pk, member_id=member.pk, score=index % 11,
                                 comment=f"Kommentar {index}", channel="api", store=store)
        complaint = services.complaint_open(member_id=member.pk, category="product", subject=f"Problem {index}",
                                            description="...", channel="staff",
                                            now=timezone.now() - timedelta(days=index))
        services.complaint_update(complaint_id=complaint.pk, assignee=factories.StaffUserFactory())


@pytest.mark.parametrize("model", ["survey", "response", "followup", "complaint"])
def test_changelists_render_with_a_constant_number_of_queries(staff_client, tiers, partner, model):
    url = reverse(f"admin:feedback_{model}_changelist")
    add_feedback(2, partner)
    queries_for(staff_client, url)  # warm the per-process caches
    few = queries_for(staff_client, url)
    add_feedback(6, partner)
    many = queries_for(staff_client, url)
    assert many == few


def test_the_complaint_page_renders_with_a_constant_number_of_queries(staff_client, tiers, partner):
    add_feedback(1, partner)
    complaint = Complaint.objects.get()
    url = reverse("admin:feedback_complaint_change", args=[complaint.pk])
    services.complaint_reply(complaint_id=complaint.pk, body="Erste Antwort", staff_user=None)
    queries_for(staff_client, url)  # warm the per-process caches (content types, permissions)
    few = queries_for(staff_client, url)
    for index in range(5):
        services.complaint_reply(complaint_id=complaint.pk, body=f"Antwort {index}",
                                 staff_user=factories.StaffUserFactory())
    assert queries_for(staff_client, url) == few


def test_the_survey_page_shows_nps_and_its_trend(staff_client, tiers):
    survey = factories.SurveyFactory()
    now = timezone.now()
    for days, score in [(0, 10), (0, 9), (0, 3), (40, 0)]:
        factories.ResponseFactory(survey=survey, score=score, created_at=now - timedelta(days=days),
                                  tier=tiers[0])
    url = reverse("admin:feedback_survey_change", args=[survey.pk])
    staff_client.get(url)  # warm the per-process caches
    with CaptureQueriesContext(connection) as few:
        html = staff_client.get(url).content.decode()
    assert 'data-testid="headline">0.0<' in html or 'data-testid="headline">0,0<' in html  # (2 - 2) / 4
    assert "by-tier" in html and "Trend by month" in html
    assert '"labels"' in html or "&quot;labels&quot;" in html
    for _ in range(20):
        factories.ResponseFactory(survey=survey, score=10, created_at=now - timedelta(days=70))
    with CaptureQueriesContext(connection) as many:
        staff_client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_overdue_complaints_are_marked_in_the_queue(staff_client, member):
    late = services.complaint_open(member_id=member.pk, category="product", subject="Zu spät", description="x",
                                   channel="staff", now=timezone.now() - timedelta(days=10))
    services.complaint_open(member_id=member.pk, category="product", subject="Pünktlich", description="x",
                            channel="staff")
    html = staff_client.get(reverse("admin:feedback_complaint_changelist")).content.decode()
    assert html.count("⚠") == 1
    overdue_only = staff_client.get(reverse("admin:feedback_complaint_changelist") + "?overdue=yes")
    assert list(overdue_only.context["cl"].result_list) == [late]


def test_staff_open_a_complaint_in_the_console(staff_client, member, superuser):
    response = staff_client.post(reverse("admin:feedback_complaint_add"), {
        "member": member.pk, "category": "service", "subject": "Unfreundlich", "description": "An der Kasse"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    complaint = Complaint.objects.get()
    assert (complaint.channel, complaint.created_by, complaint.member) == ("staff", superuser, member)


def test_a_reply_status_change_and_goodwill_from_the_complaint_page(staff_client, tiers, superuser,
                                                                    django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    member = factories.enrolled_member()
    complaint = services.complaint_open(member_id=member.pk, category="product", subject="Kaffee kalt",
                                        description="x", channel="portal")
    reward = factories.RewardFactory()
    url = reverse("admin:feedback_complaint_change", args=[complaint.pk])
    form = {"category": "product", "assignee": superuser.pk, "new_status": "resolved",
            "reply": "Wir schreiben Ihnen 100 Punkte gut.", "note": "Stammkunde", "give_points": "100",
            "give_voucher": reward.pk, "messages-TOTAL_FORMS": "0", "messages-INITIAL_FORMS": "0"}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    complaint.refresh_from_db()
    member.refresh_from_db()
    assert complaint.status == "resolved" and complaint.assignee == superuser
    assert complaint.goodwill_points == 100 and member.points_balance == 100
    assert complaint.goodwill_voucher.reward == reward
    assert sorted(complaint.messages.values_list("kind", flat=True)) == ["note", "reply"]
    assert len(mail.outbox) == 1 and "100 Punkte" in mail.outbox[0].body
    # Goodwill twice is a form error, nothing is paid again.
    again = staff_client.post(url, {**form, "new_status": "", "reply": "", "note": ""})
    assert again.status_code == 200
    member.refresh_from_db()
    assert member.points_balance == 100


def test_a_transition_that_is_not_allowed_is_a_form_error(staff_client, member):
    complaint = services.complaint_open(member_id=member.pk, category="product", subject="x", description="x",
                                        channel="portal")
    services.complaint_set_status(complaint_id=complaint.pk, status="closed")
    response = staff_client.post(reverse("admin:feedback_complaint_change", args=[complaint.pk]), {
        "category": "product", "new_status": "open", "messages-TOTAL_FORMS": "0", "messages-INITIAL_FORMS": "0"})
    assert response.status_code == 200
    complaint.refresh_from_db()
    assert complaint.status == "closed"


def test_follow_ups_are_queued_and_done_through_the_action(staff_client, superuser):
    survey = factories.SurveyFactory()
    response = services.response_record(survey_id=survey.pk, score=1, channel="api")
    follow_up = response.follow_up
    FollowUp.objects.filter(pk=follow_up.pk).update(due_at=timezone.now() - timedelta(hours=1))
    html = staff_client.get(reverse("admin:feedback_followup_changelist")).content.decode()
    assert "⚠" in html
    staff_client.post(reverse("admin:feedback_followup_changelist"),
                      {"action": "mark_done", "_selected_action": [follow_up.pk]})
    follow_up.refresh_from_db()
    assert follow_up.status == "done" and follow_up.done_by == superuser


def test_answers_filter_by_score_group_and_comment(staff_client):
    survey = factories.SurveyFactory()
    factories.ResponseFactory(survey=survey, score=10, comment="Top")
    detractor = factories.ResponseFactory(survey=survey, score=2, comment="Schlecht")
    factories.ResponseFactory(survey=survey, score=3)
    url = reverse("admin:feedback_response_changelist")
    result = staff_client.get(url + "?group=detractor&commented=yes").context["cl"].result_list
    assert list(result) == [detractor]
    assert Response.objects.count() == 3


def test_roles_support_works_complaints_marketing_manages_surveys(client, db):
    ensure_group_permissions()
    support = factories.staff_in("Support")
    marketing = factories.staff_in("Marketing")
    assert support.has_perm("feedback.change_complaint") and support.has_perm("feedback.change_followup")
    assert not marketing.has_perm("feedback.change_complaint")
    assert marketing.has_perm("feedback.change_survey") and marketing.has_perm("feedback.view_response")
    client.force_login(marketing)
    assert client.get(reverse("admin:feedback_complaint_changelist")).status_code == 403
    assert client.get(reverse("admin:feedback_survey_changelist")).status_code == 200


def test_the_complaint_queue_lists_open_complaints_first_most_urgent_on_top(staff_client, member):
    def opened(days_ago: int, subject: str):
        return services.complaint_open(member_id=member.pk, category="product", subject=subject, description="x",
                                       channel="staff", now=timezone.now() - timedelta(days=days_ago))

    closed_old = opened(30, "alt und erledigt")
    services.complaint_set_status(complaint_id=closed_old.pk, status="closed")
    recent, urgent = opened(0, "neu"), opened(3, "dringend")
    result = staff_client.get(reverse("admin:feedback_complaint_changelist")).context["cl"].result_list
    assert [complaint.pk for complaint in result] == [urgent.pk, recent.pk, closed_old.pk]


def test_inviting_a_segment_from_the_console_queues_the_job(staff_client, monkeypatch):
    from core import tasks

    queued = []
    monkeypatch.setattr(tasks, "enqueue", lambda task, *args, **kwargs: queued.append((task.name, args)))
    survey = factories.SurveyFactory()
    inactive = factories.SurveyFactory(active=False)
    staff_client.post(reverse("admin:feedback_survey_changelist"),
                      {"action": "invite_segment", "_selected_action": [survey.pk, inactive.pk]})
    assert queued == [("feedback.tasks.invite_segment", (survey.pk,))]


def test_a_surveys_kind_is_fixed_once_it_has_answers(staff_client):
    survey = factories.SurveyFactory(kind="nps")
    url = reverse("admin:feedback_survey_change", args=[survey.pk])
    assert "kind" in staff_client.get(url).context["adminform"].form.fields
    factories.ResponseFactory(survey=survey, score=9)
    assert "kind" not in staff_client.get(url).context["adminform"].form.fields
