"""The follow-up queue in the console, as support uses it: the member's name (a link to the
member), e-mail and phone on the list and the task (nothing of an erased member), a constant
number of queries however many rows, only active staff as assignees, open tasks first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.roles import ensure_group_permissions
from feedback import services
from feedback.errors import AssigneeNotStaff
from feedback.models import FollowUp
from members.erasure import member_erase
from tests import factories

LIST_URL = "admin:feedback_followup_changelist"


@pytest.fixture
def support(db):
    ensure_group_permissions()
    return factories.staff_in("Support")


@pytest.fixture
def support_client(client, support):
    client.force_login(support)
    return client


def detractor_follow_up(member=None, *, due_in_hours: int = 24) -> FollowUp:
    survey = factories.SurveyFactory()
    response = services.response_record(survey_id=survey.pk, member_id=member.pk if member else None, score=2,
                                        comment="Lange gewartet", channel="api")
    follow_up = response.follow_up
    FollowUp.objects.filter(pk=follow_up.pk).update(due_at=timezone.now() + timedelta(hours=due_in_hours))
    return follow_up


def test_the_list_and_the_task_show_the_members_name_contact_and_a_link(support_client, tiers):
    member = factories.enrolled_member(first_name="Lena", last_name="Neumann", email="lena@example.org",
                                       phone="+49 30 1234567")
    follow_up = detractor_follow_up(member)
    member_url = reverse("admin:members_member_change", args=[member.pk])
    for url in (reverse(LIST_URL), reverse("admin:feedback_followup_change", args=[follow_up.pk])):
        html = support_client.get(url).content.decode()
        assert "Lena Neumann" in html and "lena@example.org" in html and "+49 30 1234567" in html
        assert f'href="{member_url}"' in html


def test_an_erased_member_is_shown_without_anything_personal(support_client, tiers):
    member = factories.enrolled_member(first_name="Lena", last_name="Neumann", email="lena@example.org",
                                       phone="+49 30 1234567")
    follow_up = detractor_follow_up(member)
    member_erase(member_id=member.pk)
    member_url = reverse("admin:members_member_change", args=[member.pk])
    for url in (reverse(LIST_URL), reverse("admin:feedback_followup_change", args=[follow_up.pk])):
        html = support_client.get(url).content.decode()
        assert "erased member" in html or "gelöschtes Mitglied" in html
        assert "lena@example.org" not in html and "+49 30 1234567" not in html and "Neumann" not in html
        assert f'href="{member_url}"' not in html


def queries_for(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries), response.content.decode()


def test_the_list_with_many_rows_runs_a_constant_number_of_queries(support_client, tiers):
    def add(count: int) -> None:
        for index in range(count):
            member = factories.enrolled_member(phone=f"+49 170 {index:07d}")
            follow_up = detractor_follow_up(member, due_in_hours=index)
            services.follow_up_assign(follow_up_id=follow_up.pk, assignee=factories.StaffUserFactory())

    url = reverse(LIST_URL)
    add(2)
    queries_for(support_client, url)  # warm the per-process caches
    few, _ = queries_for(support_client, url)
    add(30)
    many, html = queries_for(support_client, url)
    assert many == few
    assert "+49 170 0000029" in html  # the contact details are on the page, read in the same queries


def test_only_active_staff_can_be_assigned_on_the_form_and_in_the_filter(support_client, support, tiers):
    colleague = factories.StaffUserFactory(username="kollegin")
    former = factories.StaffUserFactory(username="ehemalig", is_active=False)
    customer = factories.UserFactory(username="kundin")
    follow_up = detractor_follow_up(factories.enrolled_member())
    url = reverse("admin:feedback_followup_change", args=[follow_up.pk])

    offered = set(support_client.get(url).context["adminform"].form.fields["assignee"].queryset)
    assert colleague in offered and support in offered
    assert former not in offered and customer not in offered

    response = support_client.post(url, {"assignee": customer.pk, "note": "angerufen"})
    assert response.status_code == 200
    assert "assignee" in response.context["adminform"].form.errors
    follow_up.refresh_from_db()
    assert follow_up.assignee is None and follow_up.note == ""

    response = support_client.post(url, {"assignee": colleague.pk, "note": "angerufen"})
    assert response.status_code == 302
    follow_up.refresh_from_db()
    assert follow_up.assignee == colleague and follow_up.note == "angerufen"

    changelist = support_client.get(reverse(LIST_URL)).context["cl"]
    assignee_filter = next(spec for spec in changelist.filter_specs if getattr(spec, "field_path", "") == "assignee")
    offered_ids = {pk for pk, _label in assignee_filter.lookup_choices}
    assert colleague.pk in offered_ids and customer.pk not in offered_ids and former.pk not in offered_ids


def test_the_assign_service_refuses_a_user_who_is_not_active_staff(db, tiers):
    follow_up = detractor_follow_up(factories.enrolled_member())
    for user in (factories.UserFactory(), factories.StaffUserFactory(is_active=False)):
        with pytest.raises(AssigneeNotStaff):
            services.follow_up_assign(follow_up_id=follow_up.pk, assignee=user)
    follow_up.refresh_from_db()
    assert follow_up.assignee is None


def test_the_queue_lists_open_tasks_first_most_urgent_on_top_done_ones_last(support_client, support, tiers):
    done_earlier = detractor_follow_up(due_in_hours=-72)
    done_later = detractor_follow_up(due_in_hours=-48)
    later, urgent = detractor_follow_up(due_in_hours=48), detractor_follow_up(due_in_hours=2)
    services.follow_up_complete(follow_up_id=done_earlier.pk, staff_user=support,
                                now=timezone.now() - timedelta(days=2))
    services.follow_up_complete(follow_up_id=done_later.pk, staff_user=support)
    result = support_client.get(reverse(LIST_URL)).context["cl"].result_list
    assert [follow_up.pk for follow_up in result] == [urgent.pk, later.pk, done_later.pk, done_earlier.pk]


def test_the_complaint_queues_assignee_filter_offers_active_staff_only(support_client, support, tiers):
    colleague = factories.StaffUserFactory(username="kollege")
    former = factories.StaffUserFactory(username="frueher", is_active=False)
    customer = factories.UserFactory(username="kunde")
    changelist = support_client.get(reverse("admin:feedback_complaint_changelist")).context["cl"]
    assignee_filter = next(spec for spec in changelist.filter_specs if getattr(spec, "field_path", "") == "assignee")
    offered_ids = {pk for pk, _label in assignee_filter.lookup_choices}
    assert colleague.pk in offered_ids and support.pk in offered_ids
    assert customer.pk not in offered_ids and former.pk not in offered_ids
