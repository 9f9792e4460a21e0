"""The winners' prize notices: e-mailed after the draw commits, once per winner whatever is
retried, in the member's language, without marketing consent (a prize notice is transactional)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from campaigns import links, raffles, services, tasks
from campaigns.models import Campaign, RaffleEntry
from members.models import Member
from tests import factories


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def raffle_with_entries(count: int, *, winners: int = 2, **member_fields) -> tuple[Campaign, list[Member]]:
    prize = factories.RewardFactory(name_de="Kaffeemaschine", name_en="Coffee machine", in_catalogue=False)
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, name="Sommerverlosung", winners_count=winners,
                                         prize=prize, entry_deadline=timezone.now() + timedelta(days=2))
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    members = [factories.enrolled_member(**member_fields) for _ in range(count)]  # no consent to marketing
    for member in members:
        raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
    campaign.refresh_from_db()
    return campaign, members


def draw(campaign: Campaign) -> list[RaffleEntry]:
    return raffles.raffle_draw(campaign_id=campaign.pk, now=campaign.entry_deadline + timedelta(minutes=1))


def test_each_winner_gets_one_prize_notice_after_the_draw_commits(tiers, eager, django_capture_on_commit_callbacks):
    campaign, _members = raffle_with_entries(5)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        winners = draw(campaign)
    assert mail.outbox == []  # nothing leaves while the draw's transaction is open
    assert len(callbacks) == 1
    callbacks[0]()
    assert sorted(email.to[0] for email in mail.outbox) == sorted(entry.member.email for entry in winners)
    entry = winners[0]
    email = next(email for email in mail.outbox if email.to == [entry.member.email])
    assert "Sommerverlosung" in email.subject
    assert f"ticket {entry.ticket}" in email.body and entry.prize.display_code in email.body
    assert links.raffle_proof_url(campaign.pk) in email.body and "/konto/verlosungen/" in email.body
    assert RaffleEntry.objects.filter(won=True, notified_at__isnull=False).count() == 2
    assert not RaffleEntry.objects.filter(won=False, notified_at__isnull=False).exists()


def test_a_retried_task_or_the_sweeper_sends_no_second_notice(tiers, eager, django_capture_on_commit_callbacks):
    campaign, _members = raffle_with_entries(4)
    with django_capture_on_commit_callbacks(execute=True):
        draw(campaign)
    assert len(mail.outbox) == 2
    assert tasks.notify_raffle_winners(campaign.pk) == 0  # a redelivered task
    with django_capture_on_commit_callbacks(execute=True):
        assert raffles.raffle_notices_resume() == 0
    assert len(mail.outbox) == 2


def test_a_draw_rolled_back_sends_nothing(tiers, eager, django_capture_on_commit_callbacks):
    campaign, _members = raffle_with_entries(3)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        draw(campaign)
        raise RuntimeError("the caller's transaction fails after the draw")
    assert mail.outbox == []
    campaign.refresh_from_db()
    assert campaign.drawn_at is None


def test_a_failed_send_is_tried_again_by_the_sweeper_and_then_sent_once(tiers, eager, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    from django.core.mail.backends.locmem import EmailBackend

    campaign, _members = raffle_with_entries(3, winners=1)
    working = EmailBackend.send_messages

    def refusing(self, messages):
        raise ConnectionRefusedError("SMTP server down")

    monkeypatch.setattr(EmailBackend, "send_messages", refusing)
    with django_capture_on_commit_callbacks(execute=True):
        draw(campaign)
    assert mail.outbox == []
    assert RaffleEntry.objects.get(won=True).notified_at is None  # the claim was released
    monkeypatch.setattr(EmailBackend, "send_messages", working)
    with django_capture_on_commit_callbacks(execute=True):
        assert raffles.raffle_notices_resume() == 1
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert raffles.raffle_notices_resume() == 0
    assert len(mail.outbox) == 1


def test_the_notice_speaks_the_winners_language(tiers, eager, django_capture_on_commit_callbacks):
    campaign, _members = raffle_with_entries(1, winners=1, language="en", first_name="Paula")
    with django_capture_on_commit_callbacks(execute=True):
        draw(campaign)
    (email,) = mail.outbox
    assert email.subject == "You have won: Sommerverlosung"
    assert email.body.startswith("Hello Paula,") and "Coffee machine" in email.body
    assert "/en/konto/verlosungen/" in email.body


def test_winners_without_an_address_or_erased_get_no_notice(tiers, eager, django_capture_on_commit_callbacks):
    campaign, members = raffle_with_entries(2, winners=2)
    Member.objects.filter(pk=members[0].pk).update(email="")
    Member.objects.filter(pk=members[1].pk).update(status=Member.Status.ERASED)
    with django_capture_on_commit_callbacks(execute=True):
        draw(campaign)
    assert mail.outbox == []
    assert not RaffleEntry.objects.filter(notified_at__isnull=False).exists()
    assert raffles.raffle_notices_resume() == 0  # nothing to chase either
    # The draw went through: the erased winner stays drawn (the proof holds) but gets no voucher.
    prizes = dict(RaffleEntry.objects.filter(won=True).values_list("member_id", "prize_id"))
    assert prizes[members[1].pk] is None and prizes[members[0].pk] is not None


def test_the_stalled_send_sweeper_also_chases_prize_notices(tiers, eager, monkeypatch):
    """The beat job that resumes stalled sends queues unsent notices too (a lost task)."""
    campaign, _members = raffle_with_entries(2, winners=1)
    draw(campaign)  # the test's transaction never commits: the task is "lost"
    queued = []
    monkeypatch.setattr(raffles, "enqueue", lambda task, *args: queued.append((task.name, args)))
    report = tasks.resume_stalled_sends()
    assert report["raffle_notices"] == 1
    assert queued == [("campaigns.tasks.notify_raffle_winners", (campaign.pk,))]
