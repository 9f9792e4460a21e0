"""The challenges console: created without code, checked, counted without a query per row, by role."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from engagement.models import Challenge, ChallengeProgress
from tests import factories

pytestmark = pytest.mark.django_db

ADD = "admin:engagement_challenge_add"


@pytest.fixture
def marketing_client(client, tiers):
    client.force_login(factories.staff_in("Marketing"))
    return client


def form(**fields) -> dict:
    now = timezone.localtime()
    data = {"name_de": "Bio entdecken", "name_en": "Discover organic", "description_de": "", "description_en": "",
            "active": "on", "goal": "category", "target": "1", "category": "bio", "sku": "", "survey": "",
            "starts_at_0": now.strftime("%Y-%m-%d"), "starts_at_1": now.strftime("%H:%M:%S"),
            "ends_at_0": "", "ends_at_1": "", "segment": "", "reward_points": "200", "reward": "", "badge": ""}
    data.update(fields)
    return data


def test_marketing_creates_a_challenge_without_code(marketing_client):
    response = marketing_client.post(reverse(ADD), form())
    assert response.status_code == 302, response.content.decode()[:3000]
    challenge = Challenge.objects.get()
    assert (challenge.goal, challenge.category, challenge.reward_points) == ("category", "bio", 200)


@pytest.mark.parametrize(("fields", "message"), [
    ({"reward_points": "0"}, "Give a reward"),
    ({"target": "0"}, "greater than zero"),
    ({"category": ""}, "Name the product category"),
    ({"goal": "purchases", "target": "2.5", "category": ""}, "whole number"),
    ({"goal": "purchases"}, "only applies"),
])
def test_a_challenge_form_with_a_mistake_is_refused_with_a_clear_message(marketing_client, fields, message):
    response = marketing_client.post(reverse(ADD), form(**fields), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Challenge.objects.exists()


def test_support_may_not_create_challenges_but_may_read_progress(client, tiers):
    client.force_login(factories.staff_in("Support"))
    assert client.get(reverse(ADD)).status_code == 403
    assert client.get(reverse("admin:engagement_challengeprogress_changelist")).status_code == 200


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:engagement_challenge_changelist"))
    assert response.status_code == 200
    return len(captured)


def test_the_challenge_list_counts_completions_without_a_query_per_challenge(marketing_client):
    members = [factories.enrolled_member() for _ in range(3)]

    def challenge_with_progress():
        challenge = factories.ChallengeFactory(badge=factories.BadgeFactory(), segment=factories.SegmentFactory())
        for index, member in enumerate(members):
            ChallengeProgress.objects.create(challenge=challenge, member=member, value=3,
                                             completed_at=timezone.now() if index < 2 else None)
        return challenge

    challenge_with_progress()
    _changelist_queries(marketing_client)  # warm caches (sessions, permissions)
    few = _changelist_queries(marketing_client)
    for _ in range(4):
        challenge_with_progress()
    assert _changelist_queries(marketing_client) == few
    page = marketing_client.get(reverse("admin:engagement_challenge_changelist")).content.decode()
    assert page.count('<td class="field-completions') == 5


def test_the_progress_list_filters_completed_rows_and_is_read_only(marketing_client):
    challenge = factories.ChallengeFactory()
    done, running = factories.enrolled_member(), factories.enrolled_member()
    finished = ChallengeProgress.objects.create(challenge=challenge, member=done, value=3, completed_at=timezone.now())
    ChallengeProgress.objects.create(challenge=challenge, member=running, value=1)
    url = reverse("admin:engagement_challengeprogress_changelist")
    page = marketing_client.get(url, {"completed_at__isempty": "0", "challenge__id__exact": challenge.pk})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    change = marketing_client.post(reverse("admin:engagement_challengeprogress_change", args=[finished.pk]),
                                   {"value": "0"})
    assert change.status_code == 403
    finished.refresh_from_db()
    assert finished.value == 3
