"""Events wake triggered campaigns: an enrolment, a tier upgrade or a milestone reached queues a
run of the campaign's trigger after the commit, so the message leaves within seconds instead of
at the next beat. The subscriber costs no query, and a burst queues one run per campaign."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import transaction

import core.tasks
from campaigns import services
from campaigns.models import Campaign, Message
from core.events import publish
from members.events import MemberEnrolled
from members.models import Member, TierHistory
from rewards.events import PointsEarned, TierChanged
from rewards.ledger import points_credit
from rewards.tiers import tier_override
from tests import factories

RUN_TRIGGER = "campaigns.tasks.run_campaign_trigger"


@pytest.fixture
def broker(monkeypatch):
    """What reaches the broker (core.tasks.enqueue's last step): (task, args), in order."""
    sent: list = []
    monkeypatch.setattr(core.tasks, "_publish", lambda task, args, kwargs: sent.append((task, args)))
    return sent


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...` runs the block's after-commit callbacks at its end, as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def queued_names(broker) -> list[tuple[str, tuple]]:
    return [(task.name, args) for task, args in broker]


def run_queued(broker, committed) -> None:
    """A worker: run every queued task (and what those queue) in this process."""
    while broker:
        task, args = broker.pop(0)
        with committed():
            task(*args)


def consenting(**fields) -> Member:
    member = factories.enrolled_member(**fields)
    factories.ConsentRecordFactory(member=member, purpose="email")
    return member


def draft(trigger: str, **fields) -> Campaign:
    campaign = factories.CampaignFactory(kind=Campaign.Kind.TRIGGERED, trigger=trigger, **fields)
    factories.VariantFactory(campaign=campaign)
    return campaign


def triggered(trigger: str, **fields) -> Campaign:
    campaign = draft(trigger, **fields)
    services.campaign_launch(campaign_id=campaign.pk)
    return campaign


def window_over(campaign: Campaign) -> None:
    """The debounce window of the campaign's wake-up has passed."""
    cache.delete(f"loyalty:campaign-trigger-woken:{campaign.pk}")


def test_an_enrolment_wakes_the_welcome_campaign_and_the_member_gets_one_welcome(tiers, broker, committed):
    campaign = triggered(Campaign.Trigger.WELCOME)
    with committed():
        member = consenting()
    assert queued_names(broker) == [(RUN_TRIGGER, (campaign.pk,))]
    run_queued(broker, committed)
    assert list(Message.objects.filter(campaign=campaign).values_list("member_id", "occurrence", "status")) == [
        (member.pk, "welcome", Message.Status.SENT)]
    assert [message.to for message in mail.outbox] == [[member.email]]
    assert services.triggers_run(dispatch=False) == {campaign.pk: 0}  # the beat job finds it done


def test_a_tier_upgrade_wakes_the_tier_upgrade_campaign(tiers, broker, committed):
    _basic, _silver, gold, _platinum = tiers
    member = consenting()
    campaign = triggered(Campaign.Trigger.TIER_UPGRADE)
    with committed():
        tier_override(member_id=member.pk, tier=gold, reason="VIP", staff_user=None)
    assert queued_names(broker) == [(RUN_TRIGGER, (campaign.pk,))]
    run_queued(broker, committed)
    change = TierHistory.objects.get(member=member, to_tier=gold)
    assert list(Message.objects.filter(campaign=campaign).values_list("member_id", "occurrence")) == [
        (member.pk, f"tier:{change.pk}")]
    assert [message.to for message in mail.outbox] == [[member.email]]


def test_reaching_a_points_milestone_wakes_its_campaign_once(tiers, broker, committed):
    member = consenting()
    campaign = triggered(Campaign.Trigger.POINTS_MILESTONE, trigger_points=1000)
    with committed():
        points_credit(member_id=member.pk, points=600, reason="below")
    assert broker == []
    with committed():
        points_credit(member_id=member.pk, points=500, reason="across")  # 1,100
    assert queued_names(broker) == [(RUN_TRIGGER, (campaign.pk,))]
    broker.clear()
    window_over(campaign)
    with committed():
        points_credit(member_id=member.pk, points=100, reason="beyond")  # was already past it
    assert broker == []


def test_events_cost_no_query_and_queue_nothing_without_an_active_triggered_campaign(
        tiers, broker, committed, django_assert_num_queries):
    member = factories.enrolled_member()
    factories.CampaignFactory()  # a broadcast
    draft(Campaign.Trigger.WELCOME)
    paused = triggered(Campaign.Trigger.TIER_UPGRADE)
    services.campaign_pause(campaign_id=paused.pk)
    events = [MemberEnrolled(member_id=member.pk, via="console"),
              PointsEarned(member_id=member.pk, kind="earn", points=5, balance=5),
              TierChanged(member_id=member.pk, from_tier_id=tiers[0].pk, to_tier_id=tiers[1].pk)]
    with committed():
        with transaction.atomic():
            publish(events)  # every process reads the campaigns once
        with transaction.atomic(), django_assert_num_queries(0):
            publish(events)
    assert broker == []
    welcome = triggered(Campaign.Trigger.WELCOME)  # the same events now wake a campaign
    with committed(), transaction.atomic():
        publish(events)
    assert queued_names(broker) == [(RUN_TRIGGER, (welcome.pk,))]


def test_a_burst_of_enrolments_queues_one_run(tiers, broker, committed):
    campaign = triggered(Campaign.Trigger.WELCOME)
    with committed():
        first = consenting()
    with committed():
        second = consenting()
    assert queued_names(broker) == [(RUN_TRIGGER, (campaign.pk,))]
    window_over(campaign)
    with committed():
        consenting()
    assert queued_names(broker) == [(RUN_TRIGGER, (campaign.pk,))] * 2
    assert first.pk and second.pk


def test_a_paused_campaign_is_not_woken_and_a_run_queued_before_the_pause_sends_nothing(
        tiers, broker, committed):
    paused = triggered(Campaign.Trigger.WELCOME)
    services.campaign_pause(campaign_id=paused.pk)
    active = triggered(Campaign.Trigger.WELCOME)
    with committed():
        consenting()
    assert queued_names(broker) == [(RUN_TRIGGER, (active.pk,))]
    services.campaign_pause(campaign_id=active.pk)
    run_queued(broker, committed)
    assert not Message.objects.exists()


def test_the_subscribers_copy_of_the_campaigns_follows_activation_and_pause(tiers, broker, committed):
    campaign = draft(Campaign.Trigger.WELCOME)
    with committed():
        consenting()  # the copy now holds no active campaign
    assert broker == []
    services.campaign_launch(campaign_id=campaign.pk)  # a status update, no post_save
    with committed():
        consenting()
    assert queued_names(broker) == [(RUN_TRIGGER, (campaign.pk,))]
    services.campaign_pause(campaign_id=campaign.pk)
    window_over(campaign)
    with committed():
        consenting()
    assert len(broker) == 1
    services.campaign_resume(campaign_id=campaign.pk)
    with committed():
        consenting()
    assert queued_names(broker) == [(RUN_TRIGGER, (campaign.pk,))] * 2
