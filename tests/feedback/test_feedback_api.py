"""Feedback over the partner API: surveys for a tablet, answers (member or anonymous), complaints."""

from __future__ import annotations

import pytest

from feedback.models import Complaint, FollowUp, Response
from partners.models import Scope
from tests import factories


@pytest.fixture
def survey(db):
    return factories.SurveyFactory(reward_points=25)


def test_a_tablet_lists_active_surveys_in_the_request_language(api, survey):
    factories.SurveyFactory(active=False, name="alt")
    body = api.get("/surveys/").json()
    assert [row["id"] for row in body["results"]] == [survey.pk]
    row = body["results"][0]
    assert row["question"] == "How likely are you to recommend us to a friend?"
    assert (row["min_score"], row["max_score"], row["kind"]) == (0, 10, "nps")
    german = api.get(f"/surveys/{survey.pk}/", headers={"Accept-Language": "de"}).json()
    assert german["question"].startswith("Wie wahrscheinlich")


def test_a_member_answers_at_the_till_and_earns_the_points_once(api, survey, member):
    body = {"survey_id": survey.pk, "score": 10, "card_number": member.card_number, "store": "S1",
            "comment": "Super Beratung"}
    first = api.post("/survey-responses/", body)
    assert first.status_code == 201, first.text
    data = first.json()
    assert data["member_id"] == str(member.public_id) and data["store"] == "S1"
    assert api.post("/survey-responses/", {**body, "score": 9}).status_code == 201
    member.refresh_from_db()
    assert member.points_balance == 25
    response = Response.objects.get(pk=data["id"])
    assert response.partner == api.partner and response.store.code == "S1"


def test_an_anonymous_answer_is_accepted(api, survey):
    response = api.post("/survey-responses/", {"survey_id": survey.pk, "score": 3})
    assert response.status_code == 201, response.text
    assert response.json()["member_id"] is None
    assert FollowUp.objects.filter(response_id=response.json()["id"]).exists()  # a detractor, even anonymous


def test_a_retry_with_the_same_key_answers_once(api, survey, member):
    body = {"survey_id": survey.pk, "score": 9, "customer_number": member.customer_number}
    first = api.post("/survey-responses/", body, idempotency_key="tablet-1-42")
    again = api.post("/survey-responses/", body, idempotency_key="tablet-1-42")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Response.objects.count() == 1


@pytest.mark.parametrize("body,field", [
    ({"score": 5}, "survey_id"),
    ({"score": 5, "store": "NOPE"}, "store"),
    ({"score": 5, "card_number": "0000"}, "card_number"),
    ({"score": 5, "points_balance": 100}, "points_balance"),
])
def test_answers_are_validated(api, survey, body, field):
    body = {"survey_id": survey.pk, **body} if field != "survey_id" else body
    response = api.post("/survey-responses/", body)
    assert response.status_code == 400, response.text
    assert field in response.json()["errors"]


def test_a_score_outside_the_scale_is_a_422_in_the_api_error_shape(api, survey):
    response = api.post("/survey-responses/", {"survey_id": survey.pk, "score": 11})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_score"
    assert not Response.objects.exists()


def test_a_partner_opens_a_complaint_and_reads_only_its_own(api, other_api, member, settings):
    settings.LOYALTY_COMPLAINT_SLA_HOURS_BY_CATEGORY = {"voucher": 24}
    created = api.post("/complaints/", {"card_number": member.card_number, "category": "voucher", "store": "S1",
                                        "subject": "Gutschein abgelehnt", "description": "Code ging nicht."})
    assert created.status_code == 201, created.text
    body = created.json()
    complaint = Complaint.objects.get(pk=body["id"])
    assert complaint.channel == "api" and complaint.partner == api.partner and complaint.status == "open"
    assert (complaint.due_at - complaint.created_at).total_seconds() == 24 * 3600
    assert body["number"] == complaint.number
    assert api.get(f"/complaints/{complaint.pk}/").json()["status"] == "open"
    assert other_api.get(f"/complaints/{complaint.pk}/").status_code == 404
    assert other_api.get("/complaints/").json()["results"] == []


def test_a_complaint_needs_a_member_and_a_known_category(api):
    response = api.post("/complaints/", {"category": "weather", "subject": "x", "description": "y"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"category"}
    response = api.post("/complaints/", {"category": "other", "subject": "x", "description": "y"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"member_id"}
    assert not Complaint.objects.exists()


def test_feedback_endpoints_need_their_scopes(api, partner, survey, member):
    reader = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=[Scope.FEEDBACK_READ]).raw_key)
    assert reader.get("/surveys/").status_code == 200
    refused = reader.post("/survey-responses/", {"survey_id": survey.pk, "score": 9})
    assert refused.status_code == 403
    assert reader.post("/complaints/", {"member_id": str(member.public_id), "category": "other", "subject": "x",
                                        "description": "y"}).status_code == 403
    members_only = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=[Scope.MEMBERS_READ]).raw_key)
    assert members_only.get("/surveys/").status_code == 403
    assert not Response.objects.exists()
