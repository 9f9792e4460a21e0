"""Sending in chunks (campaigns.sending.messages_send): one claim transaction, one consent
query, one cap query and one "sent" update for many messages must still decide member by
member: consent, cap, language, the control group, each e-mail's own unsubscribe link, a
failure that belongs to one message, and nobody twice when a worker dies in the middle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemEmailBackend
from django.test import override_settings
from django.utils import timezone

from campaigns import links, sending, services
from campaigns.experiment import assign
from campaigns.models import Campaign, Message
from members.services import consent_record
from tests import factories

S = Message.Status


def consenting(**fields):
    member = factories.enrolled_member(**fields)
    factories.ConsentRecordFactory(member=member, purpose="email")
    return member


def prepared(**fields) -> tuple[Campaign, list[int]]:
    campaign = factories.CampaignFactory(**fields)
    factories.VariantFactory(campaign=campaign, name="A")
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    return campaign, list(Message.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))


class DyingBackend(LocmemEmailBackend):
    """Hands two messages over, then the worker is killed (a BaseException, like SystemExit)."""

    def send_messages(self, messages):
        if len(mail.outbox) >= 2:
            raise SystemExit("killed")
        return super().send_messages(messages)


class RefusingBackend(LocmemEmailBackend):
    """The gateway refuses one address and takes the others."""

    refused = ""

    def send_messages(self, messages):
        if messages[0].to[0] == self.refused:
            raise ConnectionError("550 mailbox unavailable")
        return super().send_messages(messages)


@override_settings(LOYALTY_CAMPAIGN_CAP_MESSAGES=2, LOYALTY_CAMPAIGN_CAP_DAYS=7)
def test_one_chunk_decides_consent_cap_language_and_holdout_member_by_member(tiers):
    german = consenting(first_name="Erika", language="de")
    english = consenting(first_name="John", language="en")
    withdrew = consenting()
    consent_record(member=withdrew, purpose="email", granted=False, source="portal")  # the latest record counts
    came_back = factories.enrolled_member(first_name="Jana")
    factories.ConsentRecordFactory(member=came_back, purpose="email", granted=False)
    factories.ConsentRecordFactory(member=came_back, purpose="email")
    sms_only = factories.enrolled_member()
    factories.ConsentRecordFactory(member=sms_only, purpose="sms")  # another purpose is no e-mail consent
    capped = consenting()
    for days_ago in (1, 2):
        factories.MessageFactory(member=capped, status=S.SENT, claimed_at=timezone.now() - timedelta(days=days_ago))
    campaign, ids = prepared()
    report = sending.messages_send(message_ids=ids, chunk_size=50)
    assert report.sent == 3 and report.skipped == {"no_consent": 2, "capped": 1}
    outcome = dict(Message.objects.filter(campaign=campaign).values_list("member_id", "skip_reason"))
    assert outcome == {german.pk: "", english.pk: "", came_back.pk: "", withdrew.pk: "no_consent",
                       sms_only.pk: "no_consent", capped.pk: "capped"}
    subjects = {email.to[0]: email.subject for email in mail.outbox}
    assert subjects == {german.email: "Hallo Erika", english.email: "Hello John", came_back.email: "Hallo Jana"}


def test_the_control_group_is_set_aside_inside_a_chunk(tiers):
    members = [consenting() for _ in range(30)]
    campaign, ids = prepared(holdout_percent=40)
    sending.messages_send(message_ids=ids, chunk_size=50)
    control = {member.pk for member in members if assign(campaign.pk, member.pk, holdout_percent=40, weights=[1])
               is None}
    assert 0 < len(control) < 30
    assert {email.to[0] for email in mail.outbox} == {member.email for member in members if member.pk not in control}
    skipped = set(Message.objects.filter(campaign=campaign, skip_reason="holdout").values_list("member_id", flat=True))
    assert skipped == control


@override_settings(LOYALTY_CAMPAIGN_CAP_MESSAGES=1)
def test_two_messages_for_one_member_in_the_same_chunk_count_against_the_cap(tiers):
    member = consenting()
    ids = prepared()[1] + prepared()[1]
    report = sending.messages_send(message_ids=ids, chunk_size=50)
    assert report.sent == 1 and report.skipped == {"capped": 1}
    assert [email.to[0] for email in mail.outbox] == [member.email]


def test_every_email_of_a_chunk_carries_the_unsubscribe_link_of_its_own_message(tiers):
    for _ in range(6):
        consenting()
    campaign, ids = prepared()
    sending.messages_send(message_ids=ids, chunk_size=50)
    address_of = dict(Message.objects.filter(campaign=campaign).values_list("pk", "member__email"))
    assert len(mail.outbox) == 6
    for email in mail.outbox:
        url = email.extra_headers["List-Unsubscribe"].strip("<>")
        message_id = links.message_id_from_token(url.rstrip("/").rsplit("/", 1)[1], links.UNSUBSCRIBE)
        assert address_of[message_id] == email.to[0]
        assert email.extra_headers["Message-ID"] == f"<campaign-message.{message_id}@treuepunkt.example>"
        assert url in email.body and url in email.alternatives[0][0]


def test_a_refused_message_fails_alone_and_the_rest_of_the_chunk_is_sent(tiers):
    members = [consenting() for _ in range(4)]
    campaign, ids = prepared()
    backend = RefusingBackend()
    backend.refused = members[1].email
    report = sending.messages_send(message_ids=ids, chunk_size=50, email_connection=backend)
    assert (report.sent, report.failed) == (3, 1)
    statuses = dict(Message.objects.filter(campaign=campaign).values_list("member_id", "status"))
    assert statuses == {member.pk: S.FAILED if member == members[1] else S.SENT for member in members}
    assert "550 mailbox unavailable" in Message.objects.get(member=members[1]).error


def test_a_worker_killed_in_the_middle_of_a_chunk_sends_nobody_twice(tiers, monkeypatch):
    monkeypatch.setattr(services, "enqueue", lambda *args, **kwargs: None)
    for _ in range(5):
        consenting()
    campaign, ids = prepared()
    now = timezone.now()
    with pytest.raises(SystemExit):
        sending.messages_send(message_ids=ids, now=now, chunk_size=50, email_connection=DyingBackend())
    assert len(mail.outbox) == 2
    # The whole chunk was claimed before delivery began: nothing of it is queued for another worker.
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {S.SENDING}
    report = services.sends_resume_stalled(now=now + timedelta(minutes=16))
    assert report["interrupted"] == 5  # at most once: possibly delivered, so never sent again
    sending.messages_send(message_ids=ids)
    assert len(mail.outbox) == 2
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {S.FAILED}


def test_the_claim_reads_the_consent_state_not_each_members_consent_history(tiers):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member = consenting()
    ids = prepared()[1]
    consent_record(member=member, purpose="email", granted=False, source="portal")  # after the segment chose them
    with CaptureQueriesContext(connection) as queries:
        report = sending.messages_send(message_ids=ids, chunk_size=50)

    assert report.sent == 0 and report.skipped == {"no_consent": 1}
    assert not [query for query in queries.captured_queries if '"members_consentrecord"' in query["sql"]]
    assert [query for query in queries.captured_queries if '"members_consentstate"' in query["sql"]]
