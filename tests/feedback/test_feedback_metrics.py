"""NPS, CSAT and CES arithmetic, in the database, on the edge cases and by breakdown."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from feedback import metrics
from feedback.models import Response
from tests import factories

BERLIN = ZoneInfo("Europe/Berlin")


def answers(survey, *scores, **fields):
    return [factories.ResponseFactory(survey=survey, score=score, **fields) for score in scores]


@pytest.fixture
def nps_survey(db):
    return factories.SurveyFactory(kind="nps")


def test_no_answers_give_none_not_a_division_error(db):
    responses = Response.objects.all()
    assert metrics.nps(responses) is None
    assert metrics.csat(responses) is None
    assert metrics.ces(responses) is None
    summary = metrics.summarize(responses, "nps")
    assert summary.answers == 0 and summary.value is None and summary.percent(0) is None
    assert metrics.by_month(responses, "nps") == []


def test_all_passives_is_an_nps_of_zero(nps_survey):
    answers(nps_survey, 7, 8, 7, 8)
    assert metrics.nps(Response.objects.all()) == 0.0
    summary = metrics.summarize(Response.objects.all(), "nps")
    assert (summary.positive, summary.neutral, summary.negative) == (0, 4, 0)


def test_nps_is_percent_promoters_minus_percent_detractors(nps_survey):
    # 9-10 promoters, 7-8 passives, 0-6 detractors: the boundaries on both sides.
    answers(nps_survey, 10, 9, 9, 8, 7, 6, 0, 5)
    assert metrics.nps(Response.objects.all()) == pytest.approx(100 * (3 - 3) / 8)
    answers(nps_survey, 10, 10)
    assert metrics.nps(Response.objects.all()) == pytest.approx(100 * (5 - 3) / 10)


def test_nps_ranges_from_minus_to_plus_hundred(nps_survey):
    answers(nps_survey, 0, 6)
    assert metrics.nps(Response.objects.all()) == -100.0
    Response.objects.all().delete()
    answers(nps_survey, 9, 10)
    assert metrics.nps(Response.objects.all()) == 100.0


def test_csat_is_the_share_of_fours_and_fives(db):
    survey = factories.SurveyFactory(kind="csat")
    answers(survey, 5, 4, 3, 2, 1)
    assert metrics.csat(Response.objects.all()) == pytest.approx(40.0)


def test_ces_is_the_average(db):
    survey = factories.SurveyFactory(kind="ces")
    answers(survey, 7, 6, 2)
    assert metrics.ces(Response.objects.all()) == pytest.approx(5.0)


def test_each_figure_counts_only_its_own_kind(nps_survey):
    answers(nps_survey, 0, 0)
    answers(factories.SurveyFactory(kind="csat"), 5)
    assert metrics.csat(Response.objects.all()) == 100.0
    assert metrics.nps(Response.objects.all()) == -100.0
    assert metrics.ces(Response.objects.all()) is None


def test_by_month_and_period(nps_survey):
    for day, score in [(datetime(2026, 1, 5, 12, tzinfo=BERLIN), 10), (datetime(2026, 1, 20, 12, tzinfo=BERLIN), 0),
                       (datetime(2026, 3, 1, 12, tzinfo=BERLIN), 9)]:
        factories.ResponseFactory(survey=nps_survey, score=score, created_at=day)
    months = metrics.by_month(Response.objects.all(), "nps")
    assert [(month.isoformat(), summary.answers, summary.value) for month, summary in months] == [
        ("2026-01-01", 2, 0.0), ("2026-03-01", 1, 100.0)]
    march = metrics.in_period(Response.objects.all(), datetime(2026, 2, 1, tzinfo=BERLIN),
                              datetime(2026, 4, 1, tzinfo=BERLIN))
    assert metrics.nps(march) == 100.0
    with translation.override("en"):  # the months in the reader's language (#23)
        chart = metrics.trend_chart(months, label="NPS")
    assert chart["labels"] == ["January 2026", "March 2026"] and chart["datasets"][0]["data"] == [0.0, 100.0]
    with translation.override("de"):
        assert metrics.trend_chart(months, label="NPS")["labels"] == ["Januar 2026", "März 2026"]


def test_by_tier_and_store_group_in_one_query(nps_survey, tiers, partner):
    basis, silber = tiers[0], tiers[1]
    store = factories.StoreFactory(partner=partner, name="Mitte")
    answers(nps_survey, 10, 10, tier=silber, store=store)
    answers(nps_survey, 0, tier=basis)
    with CaptureQueriesContext(connection) as queries:
        per_tier = metrics.by_tier(Response.objects.all(), "nps")
    assert len(queries.captured_queries) == 1
    assert [(row["name_de"], summary.value) for row, summary in per_tier] == [(basis.name_de, -100.0),
                                                                             (silber.name_de, 100.0)]
    per_store = metrics.by_store(Response.objects.all(), "nps")
    assert [(row["name"], summary.answers) for row, summary in per_store] == [("Mitte", 2), (None, 1)]


def test_by_segment_counts_members_in_each_segment_in_one_query(nps_survey, tiers):
    austria = factories.SegmentFactory(name="Österreich")
    factories.SegmentConditionFactory(segment=austria, field="country", operator="in", value="AT")
    empty = factories.SegmentFactory(name="Niemand")
    factories.SegmentConditionFactory(segment=empty, field="country", operator="in", value="FR")
    wien = factories.enrolled_member(country="AT")
    berlin = factories.enrolled_member(country="DE")
    answers(nps_survey, 10, member=wien)
    answers(nps_survey, 3, member=berlin)
    with CaptureQueriesContext(connection) as queries:
        rows = metrics.by_segment(Response.objects.all(), "nps", [austria, empty])
    assert len([q for q in queries.captured_queries if "feedback_response" in q["sql"]]) == 1
    assert [(segment.name, summary.answers, summary.value) for segment, summary in rows] == [
        ("Österreich", 1, 100.0), ("Niemand", 0, None)]


def test_classify_boundaries():
    assert [metrics.classify("nps", score) for score in (6, 7, 8, 9)] == ["detractor", "passive", "passive",
                                                                         "promoter"]
    assert [metrics.classify("csat", score) for score in (2, 3, 4)] == ["detractor", "passive", "promoter"]
