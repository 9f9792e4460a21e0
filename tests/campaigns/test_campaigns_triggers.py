"""Triggered campaigns: each trigger fires for the right members at the right moment, once per
event, however often the beat job runs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from campaigns import sending, services
from campaigns.models import Campaign, Message
from members.models import Member, TierHistory
from rewards.purchases import purchase_record
from rewards.tiers import tier_override
from tests import factories

UTC = ZoneInfo("UTC")


def consenting(**fields) -> Member:
    member = factories.enrolled_member(**fields)
    factories.ConsentRecordFactory(member=member, purpose="email")
    return member


def triggered(trigger: str, **fields) -> Campaign:
    campaign = factories.CampaignFactory(kind=Campaign.Kind.TRIGGERED, trigger=trigger, **fields)
    factories.VariantFactory(campaign=campaign)
    services.campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def due(campaign: Campaign, now: datetime) -> set[tuple[int, str]]:
    """Run the trigger (as the beat job does) and return the messages it queued."""
    services.trigger_run_campaign(campaign=campaign, now=now, dispatch=False)
    return set(Message.objects.filter(campaign=campaign).values_list("member_id", "occurrence"))


@pytest.fixture
def recorded_tasks(monkeypatch):
    queued = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args, **kwargs: queued.append((task.name, args)))
    return queued


# --- Birthday -------------------------------------------------------------------------------------

@override_settings(LOYALTY_BIRTHDAY_SEND_HOUR=0)
def test_the_birthday_begins_at_midnight_in_the_members_time_zone(tiers):
    berlin_5th = consenting(country="DE", birth_date=date(1990, 3, 5))
    berlin_4th = consenting(country="DE", birth_date=date(1990, 3, 4))
    london_4th = consenting(country="GB", birth_date=date(1980, 3, 4))
    london_5th = consenting(country="GB", birth_date=date(1980, 3, 5))
    campaign = triggered(Campaign.Trigger.BIRTHDAY)
    # 23:30 UTC on 4 March: already 5 March in Berlin (00:30), still 4 March in London (23:30).
    now = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    assert due(campaign, now) == {(berlin_5th.pk, "birthday:2026"), (london_4th.pk, "birthday:2026")}
    assert berlin_4th.pk and london_5th.pk  # their day is another moment


def test_birthday_messages_wait_for_the_send_hour_of_the_local_day(tiers):
    member = consenting(country="AT", birth_date=date(1975, 7, 20))
    campaign = triggered(Campaign.Trigger.BIRTHDAY)
    assert due(campaign, datetime(2026, 7, 20, 5, 30, tzinfo=UTC)) == set()  # 07:30 in Vienna
    assert due(campaign, datetime(2026, 7, 20, 6, 0, tzinfo=UTC)) == {(member.pk, "birthday:2026")}  # 08:00


def test_a_birthday_message_goes_out_once_a_year(tiers):
    member = consenting(country="DE", birth_date=date(1990, 5, 1))
    campaign = triggered(Campaign.Trigger.BIRTHDAY)
    morning = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    due(campaign, morning)
    due(campaign, morning + timedelta(hours=3))
    services.campaign_run_inline(campaign_id=campaign.pk)  # broadcasts only: triggered rows are sent by batches
    ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    sending.messages_send(message_ids=ids)
    sending.messages_send(message_ids=ids)
    assert len(mail.outbox) == 1
    assert due(campaign, datetime(2027, 5, 1, 9, 0, tzinfo=UTC)) == {(member.pk, "birthday:2026"),
                                                                     (member.pk, "birthday:2027")}


def test_leap_day_birthdays_are_kept_on_the_28th_in_other_years(tiers):
    member = consenting(country="DE", birth_date=date(2000, 2, 29))
    campaign = triggered(Campaign.Trigger.BIRTHDAY)
    assert due(campaign, datetime(2027, 2, 28, 10, 0, tzinfo=UTC)) == {(member.pk, "birthday:2027")}
    assert due(campaign, datetime(2028, 2, 28, 10, 0, tzinfo=UTC)) == {(member.pk, "birthday:2027")}
    assert (member.pk, "birthday:2028") in due(campaign, datetime(2028, 2, 29, 10, 0, tzinfo=UTC))


# --- Enrolment, purchases, inactivity -------------------------------------------------------------------

def test_welcome_goes_to_new_members_once(tiers):
    now = timezone.now()
    new = consenting(joined_at=now - timedelta(hours=3))
    consenting(joined_at=now - timedelta(days=30))
    campaign = triggered(Campaign.Trigger.WELCOME)
    assert due(campaign, now) == {(new.pk, "welcome")}
    assert due(campaign, now + timedelta(hours=1)) == {(new.pk, "welcome")}


def test_n_days_after_a_purchase_once_per_purchase_day(tiers):
    now = timezone.make_aware(datetime(2026, 6, 15, 12, 0))
    buyer, earlier, recent = consenting(), consenting(), consenting()
    partner = factories.PartnerFactory()
    for hours in (0, 2):  # two purchases on one day: one message
        factories.PurchaseFactory(member=buyer, partner=partner, occurred_at=now - timedelta(days=3, hours=hours))
    factories.PurchaseFactory(member=earlier, partner=partner, occurred_at=now - timedelta(days=10))
    factories.PurchaseFactory(member=recent, partner=partner, occurred_at=now - timedelta(days=1))
    campaign = triggered(Campaign.Trigger.AFTER_PURCHASE, trigger_days=3)
    assert due(campaign, now) == {(buyer.pk, "purchase:2026-06-12")}


def test_win_back_after_n_days_without_a_purchase(tiers):
    now = timezone.make_aware(datetime(2026, 6, 15, 12, 0))
    lapsed = consenting()
    Member.objects.filter(pk=lapsed.pk).update(last_purchase_at=now - timedelta(days=90, hours=5))
    long_gone = consenting()
    Member.objects.filter(pk=long_gone.pk).update(last_purchase_at=now - timedelta(days=200))
    active = consenting()
    Member.objects.filter(pk=active.pk).update(last_purchase_at=now - timedelta(days=10))
    never = consenting(joined_at=now - timedelta(days=91))
    campaign = triggered(Campaign.Trigger.INACTIVITY, trigger_days=90)
    assert due(campaign, now) == {(lapsed.pk, "inactive:2026-03-17"), (never.pk, "inactive:never")}


# --- Tier, points --------------------------------------------------------------------------------------

def test_a_tier_upgrade_triggers_a_message_a_downgrade_does_not(tiers):
    basic, silver, gold, _platinum = tiers
    up, down = consenting(), consenting()
    Member.objects.filter(pk=down.pk).update(tier=gold)
    tier_override(member_id=up.pk, tier=gold, reason="VIP", staff_user=None)
    tier_override(member_id=down.pk, tier=silver, reason="Korrektur", staff_user=None)
    campaign = triggered(Campaign.Trigger.TIER_UPGRADE)
    change = TierHistory.objects.get(member=up, to_tier=gold)
    assert due(campaign, timezone.now()) == {(up.pk, f"tier:{change.pk}")}
    assert basic is not None


def test_a_points_milestone_is_congratulated_once(tiers):
    rich, poor = consenting(), consenting()
    Member.objects.filter(pk=rich.pk).update(points_balance=1500)
    Member.objects.filter(pk=poor.pk).update(points_balance=999)
    campaign = triggered(Campaign.Trigger.POINTS_MILESTONE, trigger_points=1000)
    now = timezone.now()
    assert due(campaign, now) == {(rich.pk, "milestone:1000")}
    Member.objects.filter(pk=poor.pk).update(points_balance=1000)
    assert due(campaign, now + timedelta(hours=1)) == {(rich.pk, "milestone:1000"), (poor.pk, "milestone:1000")}


@override_settings(LOYALTY_POINTS_EXPIRY_MONTHS=24)
def test_points_expiring_within_n_days_are_announced_with_the_amount(tiers, partner, base_rule):
    now = timezone.now()
    expiring, fresh = consenting(first_name="Eva"), consenting()
    old = now - timedelta(days=715)  # expires in about two weeks
    purchase_record(member_id=expiring.pk, partner=partner, order_reference="OLD-1", amount=Decimal("120"),
                    occurred_at=old, booked_at=old)
    purchase_record(member_id=fresh.pk, partner=partner, order_reference="NEW-1", amount=Decimal("80"))
    campaign = factories.CampaignFactory(kind=Campaign.Kind.TRIGGERED, trigger=Campaign.Trigger.POINTS_EXPIRING,
                                         trigger_days=30)
    factories.VariantFactory(campaign=campaign, body_de="{{ first_name }}: {{ points_expiring }} Punkte verfallen "
                                                         "bis {{ points_expiring_date }}.")
    services.campaign_launch(campaign_id=campaign.pk)
    occurrence = f"expiring:{timezone.localdate(now):%Y-%m}"
    assert due(campaign, now) == {(expiring.pk, occurrence)}
    sending.messages_send(message_ids=list(Message.objects.values_list("pk", flat=True)))
    assert mail.outbox[0].body.startswith("Eva: 120 Punkte verfallen bis")


def test_the_beat_job_queues_batches_for_every_active_triggered_campaign(tiers, recorded_tasks):
    now = timezone.now()
    member = consenting(joined_at=now - timedelta(hours=1))
    welcome = triggered(Campaign.Trigger.WELCOME)
    paused = triggered(Campaign.Trigger.WELCOME)
    services.campaign_pause(campaign_id=paused.pk)
    recorded_tasks.clear()
    assert services.triggers_run(now=now) == {welcome.pk: 1}
    message = Message.objects.get(campaign=welcome, member=member)
    assert recorded_tasks == [("campaigns.tasks.send_batch", ([message.pk],))]


def test_a_trigger_respects_the_campaign_segment(tiers):
    now = timezone.now()
    swiss = consenting(country="CH", joined_at=now - timedelta(hours=1))
    consenting(country="DE", joined_at=now - timedelta(hours=1))
    segment = factories.SegmentConditionFactory(field="country", operator="in", value="CH").segment
    campaign = triggered(Campaign.Trigger.WELCOME, segment=segment)
    assert due(campaign, now) == {(swiss.pk, "welcome")}


def test_an_ended_triggered_campaign_sends_nothing_more(tiers):
    now = timezone.now()
    consenting(joined_at=now - timedelta(hours=1))
    campaign = triggered(Campaign.Trigger.WELCOME)
    due(campaign, now)
    services.campaign_stop(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    sending.messages_send(message_ids=list(Message.objects.values_list("pk", flat=True)))
    assert mail.outbox == []
    assert services.triggers_run(now=now, dispatch=False) == {}
