"""The demo referrals: a programme and referrals in every state, safe to seed twice."""

from __future__ import annotations

import pytest

from referrals.demo import seed_referrals_demo
from referrals.models import Referral, ReferralProgram
from rewards.models import PointEntry
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_demo_has_referrals_in_every_state_and_seeding_twice_changes_nothing(tiers, partner):
    erika = factories.enrolled_member(email="erika.demo@example.com")
    assert seed_referrals_demo(partner=partner, referrer_email="erika.demo@example.com") == {"referrals": 7}
    referrals = Referral.objects.filter(referrer=erika)
    assert set(referrals.values_list("status", flat=True)) == set(Referral.Status.values)
    assert referrals.awaiting_review().count() == 1
    assert ReferralProgram.objects.filter(active=True).count() == 1
    paid = PointEntry.objects.filter(source="referral").count()
    assert paid == 4  # two rewarded referrals, both sides

    assert seed_referrals_demo(partner=partner, referrer_email="erika.demo@example.com") == {"referrals": 0}
    assert referrals.count() == 7 and PointEntry.objects.filter(source="referral").count() == paid


def test_the_beat_jobs_are_scheduled():
    from loyalty_site.schedules import PERIODIC_TASKS

    tasks = {task for _name, task, _when in PERIODIC_TASKS}
    assert {"referrals.tasks.release_due_referrals", "referrals.tasks.expire_referrals"} <= tasks
