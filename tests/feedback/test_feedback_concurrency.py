"""Races against real PostgreSQL: answers of one member at the same moment pay the survey's
points once; one invitation answered twice at once stores one answer."""

from __future__ import annotations

import pytest

from feedback import services
from feedback.errors import InvitationUsed
from feedback.models import Response
from rewards.models import PointEntry
from tests import factories
from tests.rewards.test_ledger_concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup():
    factories.tier_ladder()
    member = factories.enrolled_member()
    survey = factories.SurveyFactory(reward_points=40)
    return member, survey


def test_ten_answers_at_once_pay_the_reward_once(setup):
    member, survey = setup

    def work(index: int) -> None:
        services.response_record(survey_id=survey.pk, member_id=member.pk, score=index % 11, channel="api")

    outcomes = run_in_threads(10, work)
    assert outcomes == [None] * 10
    assert Response.objects.filter(member=member).count() == 10
    entries = PointEntry.objects.filter(member=member, source="survey")
    assert entries.count() == 1
    member.refresh_from_db()
    assert member.points_balance == 40


def test_one_invitation_answered_twice_at_once_stores_one_answer(setup):
    member, survey = setup
    invitation = factories.SurveyInvitationFactory(survey=survey, member=member)

    def work(index: int) -> None:
        services.response_record(survey_id=survey.pk, invitation_id=invitation.pk, score=10 - index,
                                 channel="email" if index else "portal")

    outcomes = run_in_threads(2, work)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["InvitationUsed", "NoneType"]
    assert all(outcome is None or isinstance(outcome, InvitationUsed) for outcome in outcomes)
    assert Response.objects.filter(invitation=invitation).count() == 1
    member.refresh_from_db()
    assert member.points_balance == 40
