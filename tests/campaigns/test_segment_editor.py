"""The segment editor (#23): conditions in words, only fitting operators, the audience counted
while editing (before the first save), and the untouched blank row never blocks a save."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns.models import Segment, SegmentCondition
from tests import factories
from tests.campaigns.test_campaigns_admin import inline_data

LIVE_COUNT = "admin:campaigns_segment_live_count"


@pytest.fixture
def staff_client(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def test_a_condition_reads_in_words_not_internal_keys(db):
    segment = Segment.objects.create(name="Neu")
    condition = SegmentCondition.objects.create(segment=segment, field="days_since_joined", operator="lte", value="1")
    assert str(condition) == "days since joining at most 1"


def test_the_live_count_counts_the_conditions_as_entered_before_saving(staff_client, tiers):
    factories.enrolled_member(country="AT")
    factories.enrolled_member(country="AT")
    factories.enrolled_member(country="DE")
    rows = [{"group": "1", "field": "country", "operator": "in", "value": "AT", "days": ""},
            {"group": "1", "field": "", "operator": "", "value": "", "days": ""}]  # the blank extra row
    response = staff_client.post(reverse(LIVE_COUNT), inline_data(rows))
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert "2 active members match" in response.json()["text"]
    assert not Segment.objects.exists()  # counting saves nothing


def test_rows_marked_for_deletion_are_not_counted(staff_client, tiers):
    factories.enrolled_member(country="AT")
    factories.enrolled_member(country="DE")
    rows = [{"group": "1", "field": "country", "operator": "in", "value": "AT", "days": "", "DELETE": "on"}]
    assert staff_client.post(reverse(LIVE_COUNT), inline_data(rows)).json()["count"] == 2


def test_an_invalid_condition_gets_its_message_instead_of_a_count(staff_client, tiers):
    rows = [{"group": "1", "field": "country", "operator": "gt", "value": "AT", "days": ""}]
    response = staff_client.post(reverse(LIVE_COUNT), inline_data(rows))
    assert response.status_code == 400
    assert "operator must be one of" in response.json()["error"]


def test_the_live_count_needs_post_and_the_segment_view_permission(client, db):
    staff = factories.UserFactory(is_staff=True)  # no permissions
    client.force_login(staff)
    assert client.post(reverse(LIVE_COUNT), inline_data([])).status_code == 403
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse(LIVE_COUNT)).status_code == 405


def test_operator_options_name_the_fields_they_fit(staff_client):
    page = staff_client.get(reverse("admin:campaigns_segment_add")).content.decode()
    assert 'value="given" data-fields="consent"' in page
    assert 'value="" selected' in page  # the blank row starts blank


def test_saving_a_segment_ignores_a_new_row_without_field_and_value(staff_client, tiers):
    segment = Segment.objects.create(name="Österreich")
    existing = SegmentCondition.objects.create(segment=segment, field="country", operator="in", value="AT")
    data = inline_data([{"id": str(existing.pk), "segment": str(segment.pk), "group": "1", "field": "country",
                         "operator": "in", "value": "AT", "days": ""},
                        {"group": "1", "field": "", "operator": "given", "value": "", "days": ""}])
    data["conditions-INITIAL_FORMS"] = "1"
    response = staff_client.post(reverse("admin:campaigns_segment_change", args=[segment.pk]),
                                 {"name": "Österreich", "description": "", **data})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert segment.conditions.count() == 1
