"""Sending: one message per member and occurrence, consent and the frequency cap checked at send
time, every skip with its reason, the control group never receives, incentives once, pause and
resume, interrupted sends, templates in a sandbox, results and uplift."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemEmailBackend
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from campaigns import sending, services, sms, tasks
from campaigns.errors import CampaignNotReady, CampaignStateError, InvalidTemplate
from campaigns.experiment import assign
from campaigns.models import Campaign, Message
from campaigns.rendering import render_text, template_validate
from campaigns.selectors import campaign_results
from members.models import Member
from members.services import consent_record
from rewards.models import PointEntry, Redemption
from tests import factories

S = Message.Status


def consenting(**fields) -> Member:
    member = factories.enrolled_member(**fields)
    factories.ConsentRecordFactory(member=member, purpose="email")
    return member


def new_campaign(**fields) -> Campaign:
    campaign = factories.CampaignFactory(**fields)
    factories.VariantFactory(campaign=campaign, name="A")
    return campaign


def send(campaign: Campaign, *, now=None) -> sending.SendReport:
    services.campaign_launch(campaign_id=campaign.pk, now=now)
    report = services.campaign_run_inline(campaign_id=campaign.pk, now=now)
    campaign.refresh_from_db()
    return report


@pytest.fixture(autouse=True)
def _sms_outbox():
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def recorded_tasks(monkeypatch):
    """What the services hand to Celery (after commit), without a broker."""
    queued = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args, **kwargs: queued.append((task.name, args)))
    return queued


# --- The happy path ---------------------------------------------------------------------------------

def test_a_broadcast_sends_each_member_one_personalised_email_in_their_language(tiers):
    erika = consenting(first_name="Erika", language="de")
    john = consenting(first_name="John", language="en")
    campaign = new_campaign()
    report = send(campaign)
    assert report.sent == 2
    assert campaign.status == Campaign.Status.DONE and campaign.finished_at is not None
    by_address = {email.to[0]: email for email in mail.outbox}
    german, english = by_address[erika.email], by_address[john.email]
    assert german.subject == "Hallo Erika" and "du hast 0 Punkte" in german.body
    assert english.subject == "Hello John" and "you have 0 points" in english.body
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {S.SENT}


def test_every_email_has_a_one_click_unsubscribe_link_and_headers(tiers):
    member = consenting()
    campaign = new_campaign()
    send(campaign)
    email = mail.outbox[0]
    message = Message.objects.get(campaign=campaign, member=member)
    url = email.extra_headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("http") and "/c/u/" in url
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html" and url in html
    assert email.extra_headers["Message-ID"] == f"<campaign-message.{message.pk}@treuepunkt.example>"
    parsed = email.message()
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- Nobody twice ---------------------------------------------------------------------------------

def test_running_the_send_task_twice_sends_nobody_twice(tiers):
    members = [consenting() for _ in range(5)]
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)  # a redelivered prepare adds nothing
    ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    assert len(ids) == len(members)
    first = tasks.send_batch(ids)
    second = tasks.send_batch(ids)
    assert first["sent"] == 5 and second["sent"] == 0
    assert len(mail.outbox) == 5
    assert sorted(email.to[0] for email in mail.outbox) == sorted(member.email for member in members)


def test_the_database_refuses_a_second_message_for_the_same_occurrence(tiers):
    message = factories.MessageFactory(member=consenting(), occurrence="birthday:2026")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.MessageFactory(campaign=message.campaign, member=message.member, occurrence="birthday:2026")
    factories.MessageFactory(campaign=message.campaign, member=message.member, occurrence="birthday:2027")


def test_a_skipped_message_must_say_why(tiers):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.MessageFactory(member=consenting(), status=S.SKIPPED)


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_batch_send_each_message_once(recorded_tasks):
    factories.tier_ladder()
    for _ in range(12):
        consenting()
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    reports = []
    barrier = threading.Barrier(3)

    def worker():
        try:
            barrier.wait()
            reports.append(sending.messages_send(message_ids=ids))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.sent for report in reports) == 12
    assert len(mail.outbox) == 12
    assert len({email.to[0] for email in mail.outbox}) == 12


# --- Consent, address and the frequency cap at send time ------------------------------------------

def test_consent_withdrawn_after_queueing_means_not_sent(tiers):
    member = consenting()
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    consent_record(member=member, purpose="email", granted=False, source="portal")  # "yesterday"
    ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    report = sending.messages_send(message_ids=ids)
    assert report.sent == 0 and report.skipped == {"no_consent": 1}
    assert mail.outbox == []
    message = Message.objects.get(campaign=campaign)
    assert (message.status, message.skip_reason) == (S.SKIPPED, Message.SkipReason.NO_CONSENT)


def test_skipped_members_are_recorded_with_the_reason(tiers):
    consenting()
    no_consent = factories.enrolled_member()
    unconfirmed = factories.enrolled_member()
    consent_record(member=unconfirmed, purpose="email", granted=True, source="portal")  # no double opt-in yet
    no_address = consenting()
    Member.objects.filter(pk=no_address.pk).update(email="")
    campaign = new_campaign()
    report = send(campaign)
    assert report.sent == 1
    reasons = dict(Message.objects.filter(campaign=campaign).values_list("member_id", "skip_reason"))
    assert reasons[no_consent.pk] == reasons[unconfirmed.pk] == Message.SkipReason.NO_CONSENT
    assert reasons[no_address.pk] == Message.SkipReason.NO_ADDRESS


def test_a_member_blocked_after_queueing_is_skipped(tiers):
    member = consenting()
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)
    sending.messages_send(message_ids=list(Message.objects.values_list("pk", flat=True)))
    assert Message.objects.get().skip_reason == Message.SkipReason.INACTIVE
    assert mail.outbox == []


@override_settings(LOYALTY_CAMPAIGN_CAP_MESSAGES=2, LOYALTY_CAMPAIGN_CAP_DAYS=7)
def test_the_frequency_cap_counts_messages_of_the_last_days(tiers):
    capped, fresh = consenting(), consenting()
    now = timezone.now()
    for days_ago in (1, 6):
        factories.MessageFactory(member=capped, status=S.SENT, claimed_at=now - timedelta(days=days_ago))
    for days_ago in (1, 8):  # the one from eight days ago no longer counts
        factories.MessageFactory(member=fresh, status=S.SENT, claimed_at=now - timedelta(days=days_ago))
    factories.MessageFactory(member=fresh, status=S.FAILED, claimed_at=now - timedelta(days=2))  # never arrived
    campaign = new_campaign()
    report = send(campaign)
    assert report.sent == 1 and report.skipped == {"capped": 1}
    assert [email.to[0] for email in mail.outbox] == [fresh.email]
    assert Message.objects.get(campaign=campaign, member=capped).skip_reason == Message.SkipReason.CAPPED


@override_settings(LOYALTY_CAMPAIGN_CAP_MESSAGES=2, LOYALTY_CAMPAIGN_CAP_DAYS=7)
@pytest.mark.django_db(transaction=True)
def test_the_cap_holds_when_campaigns_send_to_the_same_member_at_the_same_moment(recorded_tasks):
    factories.tier_ladder()
    member = consenting()
    campaigns = [new_campaign() for _ in range(4)]
    ids = []
    for campaign in campaigns:
        services.campaign_launch(campaign_id=campaign.pk)
        services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
        ids.append(Message.objects.get(campaign=campaign).pk)
    barrier = threading.Barrier(len(ids))

    def worker(message_id):
        try:
            barrier.wait()
            sending.messages_send(message_ids=[message_id])
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(message_id,)) for message_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(Message.objects.filter(member=member).values_list("status", "skip_reason"))
    assert statuses == [(S.SENT, ""), (S.SENT, ""), (S.SKIPPED, "capped"), (S.SKIPPED, "capped")]
    assert len(mail.outbox) == 2


# --- Holdout --------------------------------------------------------------------------------------

def test_the_control_group_never_receives_anything(tiers):
    members = [consenting() for _ in range(40)]
    campaign = new_campaign(holdout_percent=50, bonus_points=25)
    send(campaign)
    control = set(Message.objects.filter(campaign=campaign, is_control=True).values_list("member_id", flat=True))
    assert 0 < len(control) < 40
    expected = {member.pk for member in members if assign(campaign.pk, member.pk, holdout_percent=50, weights=[1])
                is None}
    assert control == expected
    received = {email.to[0] for email in mail.outbox}
    assert not received & {member.email for member in members if member.pk in control}
    assert len(received) == 40 - len(control)
    assert set(Message.objects.filter(is_control=True).values_list("status", "skip_reason")) == {(S.SKIPPED, "holdout")}
    assert not PointEntry.objects.filter(member_id__in=control, source="campaign").exists()


def test_a_member_without_consent_is_not_counted_in_the_control_group(tiers):
    members = [factories.enrolled_member() for _ in range(20)]  # nobody consented
    campaign = new_campaign(holdout_percent=50)
    send(campaign)
    assert Message.objects.filter(campaign=campaign, skip_reason="no_consent").count() == len(members)
    assert campaign_results(campaign).control is None


# --- Incentives -----------------------------------------------------------------------------------

def test_bonus_points_and_a_voucher_are_issued_once_with_the_message(tiers):
    member = consenting()
    reward = factories.RewardFactory(name_de="5 € Rabatt", in_catalogue=False)
    campaign = factories.CampaignFactory(bonus_points=50, reward=reward)
    factories.VariantFactory(campaign=campaign, body_de="Code {{ voucher_code }}, {{ bonus_points }} Punkte extra, "
                                                         "jetzt {{ balance }}.")
    send(campaign)
    member.refresh_from_db()
    message = Message.objects.get(campaign=campaign)
    assert member.points_balance == 50
    entry = PointEntry.objects.get(member=member, source="campaign")
    assert (entry.reference, entry.points, entry.kind) == (f"campaign:{message.pk}", 50, PointEntry.Kind.BONUS)
    voucher = Redemption.objects.get(member=member)
    assert message.redemption == voucher and voucher.source == Redemption.Source.CAMPAIGN and voucher.points == 0
    assert f"Code {voucher.display_code}, 50 Punkte extra, jetzt 50." in mail.outbox[0].body


class IdempotentLocmemBackend(LocmemEmailBackend):
    """Like a gateway that drops a repeat of the same Message-ID."""

    idempotent_delivery = True


@override_settings(EMAIL_BACKEND="tests.campaigns.test_campaigns_sending.IdempotentLocmemBackend")
def test_a_retried_claim_does_not_issue_the_incentive_again(tiers):
    member = consenting()
    reward = factories.RewardFactory(in_catalogue=False)
    campaign = factories.CampaignFactory(bonus_points=10, reward=reward)
    factories.VariantFactory(campaign=campaign)
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    message = Message.objects.get()
    now = timezone.now()
    assert sending.message_claim(message_id=message.pk, now=now) is not None  # then the worker dies
    report = services.sends_resume_stalled(now=now + timedelta(minutes=16))
    assert report["requeued"] == 1
    sending.messages_send(message_ids=[message.pk])
    member.refresh_from_db()
    assert member.points_balance == 10
    assert PointEntry.objects.filter(member=member).count() == 1
    assert Redemption.objects.filter(member=member).count() == 1
    message.refresh_from_db()
    assert message.status == S.SENT and message.attempts == 2


def test_an_unavailable_voucher_does_not_stop_the_message(tiers):
    consenting()
    reward = factories.RewardFactory(stock=0, in_catalogue=False)
    campaign = factories.CampaignFactory(reward=reward)
    factories.VariantFactory(campaign=campaign)
    send(campaign)
    message = Message.objects.get()
    assert message.status == S.SENT and message.redemption is None
    assert "no voucher" in message.error


# --- Interrupted sends ------------------------------------------------------------------------------

def test_an_interrupted_send_is_not_repeated_by_default_at_most_once(tiers, recorded_tasks):
    consenting()
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    message = Message.objects.get()
    now = timezone.now()
    sending.message_claim(message_id=message.pk, now=now)  # claimed, then the worker was killed
    assert services.sends_resume_stalled(now=now + timedelta(minutes=5))["interrupted"] == 0  # not stale yet
    report = services.sends_resume_stalled(now=now + timedelta(minutes=16))
    assert report["interrupted"] == 1 and report["requeued"] == 0
    message.refresh_from_db()
    assert message.status == S.FAILED and message.error.startswith("interrupted")
    sending.messages_send(message_ids=[message.pk])
    assert mail.outbox == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


def test_lost_batches_are_dispatched_again_when_a_campaign_makes_no_progress(tiers, recorded_tasks):
    for _ in range(3):
        consenting()
    campaign = new_campaign()
    now = timezone.now()
    services.campaign_launch(campaign_id=campaign.pk, now=now)
    services.campaign_prepare(campaign_id=campaign.pk, now=now, dispatch=False)
    Campaign.objects.filter(pk=campaign.pk).update(last_progress_at=now)
    recorded_tasks.clear()
    assert services.sends_resume_stalled(now=now + timedelta(minutes=1))["campaigns"] == 0  # still busy
    report = services.sends_resume_stalled(now=now + timedelta(minutes=20))
    assert report["campaigns"] == 1
    ids = sorted(Message.objects.values_list("pk", flat=True))
    assert recorded_tasks == [("campaigns.tasks.send_batch", (ids,))]


def test_a_failed_delivery_is_recorded_and_can_be_retried(tiers, recorded_tasks):
    consenting()
    campaign = new_campaign()
    with override_settings(EMAIL_BACKEND="tests.campaigns.test_campaigns_sending.BrokenBackend"):
        report = send(campaign)
    assert report.failed == 1
    message = Message.objects.get()
    assert message.status == S.FAILED and "mail server down" in message.error
    assert campaign.status == Campaign.Status.DONE
    recorded_tasks.clear()
    assert services.messages_retry_failed(campaign_id=campaign.pk) == 1
    assert recorded_tasks == [("campaigns.tasks.send_batch", ([message.pk],))]
    sending.messages_send(message_ids=[message.pk])
    message.refresh_from_db()
    assert message.status == S.SENT and len(mail.outbox) == 1


class BrokenBackend(LocmemEmailBackend):
    def send_messages(self, messages):
        raise ConnectionError("mail server down")


# --- Status: launch, schedule, pause, resume, stop ----------------------------------------------------

def test_launching_dispatches_the_preparation_after_commit(tiers, recorded_tasks):
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    assert recorded_tasks == [("campaigns.tasks.prepare_campaign", (campaign.pk,))]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    with pytest.raises(CampaignStateError):
        services.campaign_launch(campaign_id=campaign.pk)


def test_a_campaign_without_a_text_cannot_start(tiers):
    campaign = factories.CampaignFactory()
    with pytest.raises(CampaignNotReady):
        services.campaign_launch(campaign_id=campaign.pk)
    factories.VariantFactory(campaign=campaign, body_de="{% load static %}")
    with pytest.raises(CampaignNotReady, match="load"):
        services.campaign_launch(campaign_id=campaign.pk)


def test_a_scheduled_broadcast_starts_when_its_time_comes(tiers, recorded_tasks):
    now = timezone.now()
    campaign = new_campaign(scheduled_at=now + timedelta(hours=2))
    services.campaign_launch(campaign_id=campaign.pk, now=now)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED and recorded_tasks == []
    assert services.campaigns_start_due(now=now + timedelta(hours=1)) == 0
    assert services.campaigns_start_due(now=now + timedelta(hours=2)) == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert recorded_tasks == [("campaigns.tasks.prepare_campaign", (campaign.pk,))]


def test_pausing_stops_the_batches_and_resuming_continues(tiers, recorded_tasks):
    for _ in range(4):
        consenting()
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    services.campaign_pause(campaign_id=campaign.pk)
    ids = sorted(Message.objects.values_list("pk", flat=True))
    report = sending.messages_send(message_ids=ids)
    assert report.stopped and report.sent == 0 and mail.outbox == []
    assert set(Message.objects.values_list("status", flat=True)) == {S.QUEUED}
    recorded_tasks.clear()
    services.campaign_resume(campaign_id=campaign.pk)
    assert recorded_tasks == [("campaigns.tasks.send_batch", (ids,))]
    sending.messages_send(message_ids=ids)
    assert len(mail.outbox) == 4
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


def test_stopping_a_broadcast_skips_what_is_still_queued(tiers):
    for _ in range(3):
        consenting()
    campaign = new_campaign()
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    services.campaign_stop(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert set(Message.objects.values_list("skip_reason", flat=True)) == {"cancelled"}
    sending.messages_send(message_ids=list(Message.objects.values_list("pk", flat=True)))
    assert mail.outbox == []


def test_a_segment_limits_the_audience(tiers):
    german = consenting(country="DE")
    consenting(country="AT")
    segment = factories.SegmentConditionFactory(field="country", operator="in", value="DE").segment
    campaign = new_campaign(segment=segment)
    send(campaign)
    assert [email.to[0] for email in mail.outbox] == [german.email]


# --- SMS ------------------------------------------------------------------------------------------------

def test_sms_goes_through_the_pluggable_backend_with_sms_consent(tiers):
    texter = factories.enrolled_member(phone="+49 170 1234567", first_name="Tina")
    factories.ConsentRecordFactory(member=texter, purpose="sms", confirmed_at=None)
    email_only = consenting(phone="+49 170 7654321")
    campaign = factories.CampaignFactory(channel=Campaign.Channel.SMS)
    factories.VariantFactory(campaign=campaign, body_de="Hallo {{ first_name }}! Stopp: {{ unsubscribe_url }}")
    send(campaign)
    assert mail.outbox == []
    assert [(sms_message.to, sms_message.body.split("!")[0]) for sms_message in sms.outbox] == [
        ("+49 170 1234567", "Hallo Tina")]
    message = Message.objects.get(member=texter)
    assert sms.outbox[0].reference == f"campaign-message-{message.pk}"
    assert Message.objects.get(member=email_only).skip_reason == Message.SkipReason.NO_CONSENT


# --- Templates ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "{% load static %}", "{% include 'base.html' %}", "{% extends 'base.html' %}", "{% debug %}",
    "{% for c in first_name %}{{ c }}{% endfor %}", "{{ first_name.__class__ }}", "{{ first_name|center:'99999999' }}",
    "{% csrf_token %}", "{% url 'admin:index' %}",
])
def test_message_texts_are_rendered_in_a_sandbox(text):
    with pytest.raises(InvalidTemplate):
        template_validate(text)


def test_a_text_sees_only_plain_values():
    context = {"first_name": "Erika", "balance": 1250}
    assert render_text("{% if balance > 1000 %}Viele Punkte, {{ first_name|upper }}!{% endif %}", context) == (
        "Viele Punkte, ERIKA!")
    assert render_text("{{ member.email }}{{ settings.SECRET_KEY }}", context) == ""
    assert render_text("<b>{{ first_name }}</b>", {"first_name": "<i>"}) == "<b><i></b>"  # plain text, no escaping


# --- Results ----------------------------------------------------------------------------------------

def test_results_count_conversions_and_revenue_per_arm_with_uplift(tiers):
    members = [consenting() for _ in range(30)]
    campaign = factories.CampaignFactory(holdout_percent=50, attribution_days=14)
    factories.VariantFactory(campaign=campaign, name="A")
    sent_at = timezone.now() - timedelta(days=20)
    send(campaign, now=sent_at)
    rows = {message.member_id: message for message in Message.objects.filter(campaign=campaign)}
    treated = [member for member in members if not rows[member.pk].is_control]
    control = [member for member in members if rows[member.pk].is_control]
    assert treated and control
    partner = factories.PartnerFactory()
    for member in treated[:3]:  # inside the window
        factories.PurchaseFactory(member=member, partner=partner, amount=Decimal("20.00"),
                                  occurred_at=sent_at + timedelta(days=2))
    factories.PurchaseFactory(member=treated[0], partner=partner, amount=Decimal("10.00"), currency="CHF",
                              occurred_at=sent_at + timedelta(days=3))  # a second purchase: revenue, not a member
    factories.PurchaseFactory(member=control[0], partner=partner, amount=Decimal("15.00"),
                              occurred_at=sent_at + timedelta(days=13))
    factories.PurchaseFactory(member=control[-1], partner=partner, amount=Decimal("99.00"),
                              occurred_at=sent_at + timedelta(days=15))  # after the window
    factories.PurchaseFactory(member=treated[-1], partner=partner, amount=Decimal("99.00"),
                              occurred_at=sent_at - timedelta(days=1))  # before the message
    results = campaign_results(campaign)
    assert results.sent == len(treated) and results.skipped_by_reason == {"holdout": len(control)}
    (arm,) = results.arms
    assert (arm.size, arm.conversions, arm.revenue) == (len(treated), 3, Decimal("70.60"))
    assert (results.control.size, results.control.conversions, results.control.revenue) == (
        len(control), 1, Decimal("15.00"))
    assert arm.uplift.difference == pytest.approx(3 / len(treated) - 1 / len(control))
    assert results.conversions == 4
