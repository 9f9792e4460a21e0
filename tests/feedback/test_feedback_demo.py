"""Demo feedback: a year of answers with a visible upward NPS trend, complaints in every state,
fast and idempotent."""

from __future__ import annotations

import time
from datetime import datetime

from django.db.models import Sum
from django.utils import timezone

from feedback import metrics
from feedback.demo import seed_feedback_demo
from feedback.models import Complaint, FollowUp, Response, Survey, SurveyInvitation
from members.demo import DEMO_MEMBER_EMAIL
from rewards.models import PointEntry
from tests import factories


def aware(day):
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def test_demo_feedback_shows_a_trend_and_every_complaint_state(tiers, partner):
    factories.StoreFactory(partner=partner)
    demo = factories.enrolled_member(email=DEMO_MEMBER_EMAIL)
    for _ in range(20):
        factories.enrolled_member()
    started = time.monotonic()
    result = seed_feedback_demo()
    assert time.monotonic() - started < 10
    assert result["created"] and result["responses"] > 1000
    nps_survey = Survey.objects.get(kind="nps")
    months = metrics.by_month(Response.objects.filter(survey=nps_survey), "nps")
    assert len(months) >= 12
    answers = Response.objects.filter(survey=nps_survey)
    first_quarter = metrics.nps(metrics.in_period(answers, end=aware(months[3][0])))
    last_quarter = metrics.nps(metrics.in_period(answers, start=aware(months[-3][0])))
    assert last_quarter - first_quarter > 20
    assert set(Complaint.objects.values_list("status", flat=True)) == set(Complaint.Status.values)
    assert any(complaint.is_overdue for complaint in Complaint.objects.all())
    assert FollowUp.objects.filter(status="open").exists() and FollowUp.objects.filter(status="done").exists()
    assert SurveyInvitation.objects.filter(member=demo, answered_at__isnull=True).exists()
    assert Complaint.objects.filter(member=demo).exists()
    # Goodwill went through the ledger: balances still equal the sum of the entries.
    demo_total = PointEntry.objects.filter(source="complaint").aggregate(total=Sum("points"))["total"]
    assert demo_total == 200

    counts = (Response.objects.count(), Complaint.objects.count(), FollowUp.objects.count())
    assert seed_feedback_demo() == {"created": False}
    assert (Response.objects.count(), Complaint.objects.count(), FollowUp.objects.count()) == counts
