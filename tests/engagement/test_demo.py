"""The demo challenges: running challenges with badges and progress, safe to seed twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from engagement.demo import seed_engagement_demo
from engagement.models import Badge, Challenge, ChallengeProgress
from rewards.models import PointEntry
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_demo_has_challenges_badges_and_progress_and_seeding_twice_changes_nothing(tiers, buy):
    erika = factories.enrolled_member(email="erika.demo@example.com")
    now = timezone.now()
    for weeks in range(3):
        buy(erika, f"DEMO-{weeks}", "30.00", occurred_at=now - timedelta(weeks=weeks),
            lines=[("30.00", "Wein", "WEI-101")])
    first = seed_engagement_demo(member_email="erika.demo@example.com")
    assert Challenge.objects.running().count() == 3 and Badge.objects.count() == 3
    progress = ChallengeProgress.objects.filter(member=erika).select_related("challenge")
    rows = {row.challenge.goal: row for row in progress}
    assert rows["purchases"].completed_at is not None and rows["category"].completed_at is not None
    assert rows["streak"].value == 3 and rows["streak"].completed_at is None
    paid = PointEntry.objects.filter(source="challenge").count()
    assert paid == 2

    assert seed_engagement_demo(member_email="erika.demo@example.com") == first
    assert Challenge.objects.count() == 3 and PointEntry.objects.filter(source="challenge").count() == paid
