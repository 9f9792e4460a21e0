"""Raffles (Verlosungen): invited members enter once (optionally paying points once), the draw is
reproducible from its recorded seed, and the winners' prizes are issued as vouchers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from campaigns import links, raffles, services
from campaigns.errors import RaffleClosed
from campaigns.models import Campaign, Message, RaffleEntry
from campaigns.selectors import raffle_verify
from members.models import Member
from rewards.errors import InsufficientPoints
from rewards.ledger import points_adjust
from rewards.models import PointEntry, Redemption
from tests import factories


def consenting(points: int = 0, **fields) -> Member:
    member = factories.enrolled_member(**fields)
    factories.ConsentRecordFactory(member=member, purpose="email")
    if points:
        points_adjust(member_id=member.pk, points=points, reason="Test", staff_user=None)
    return member


@pytest.fixture
def raffle(tiers):
    prize = factories.RewardFactory(name_de="Kaffeemaschine", in_catalogue=False)
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, entry_points=50, winners_count=2, prize=prize,
                                         entry_deadline=timezone.now() + timedelta(days=7))
    factories.VariantFactory(campaign=campaign, body_de="Mitmachen: {{ raffle_url }} ({{ raffle_entry_points }} P.)",
                             body_en="Take part: {{ raffle_url }}")
    return campaign


def invite(campaign: Campaign) -> None:
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_run_inline(campaign_id=campaign.pk)
    campaign.refresh_from_db()


def raffle_path(member: Member, campaign: Campaign) -> str:
    message = Message.objects.get(campaign=campaign, member=member)
    return links.raffle_url(message.pk).removeprefix("http://127.0.0.1:8000")


def test_the_invitation_carries_a_personal_entry_link(raffle, client):
    member = consenting(points=100)
    invite(raffle)
    assert raffle.status == Campaign.Status.DONE
    assert raffle_path(member, raffle) in mail.outbox[0].body and "(50 P.)" in mail.outbox[0].body
    response = client.get(raffle_path(member, raffle))
    assert response.status_code == 200 and "50" in response.content.decode()
    assert not RaffleEntry.objects.exists()


def test_entering_costs_the_entry_points_once(raffle, client):
    member = consenting(points=120)
    invite(raffle)
    assert client.post(raffle_path(member, raffle)).status_code == 200
    assert client.post(raffle_path(member, raffle)).status_code == 200
    raffles.raffle_enter(campaign_id=raffle.pk, member_id=member.pk)
    entry = RaffleEntry.objects.get()
    assert (entry.member, entry.points_paid) == (member, 50)
    member.refresh_from_db()
    assert member.points_balance == 70
    debit = PointEntry.objects.get(member=member, source="raffle")
    assert (debit.points, debit.reference) == (-50, f"raffle:{raffle.pk}:{member.pk}")


def test_entering_without_enough_points_is_refused(raffle, client):
    member = consenting(points=10)
    invite(raffle)
    response = client.post(raffle_path(member, raffle))
    assert response.status_code == 422
    assert not RaffleEntry.objects.exists()
    with pytest.raises(InsufficientPoints):
        raffles.raffle_enter(campaign_id=raffle.pk, member_id=member.pk)


def test_only_the_invited_segment_may_enter_and_only_in_time(raffle):
    segment = factories.SegmentConditionFactory(field="country", operator="in", value="AT").segment
    Campaign.objects.filter(pk=raffle.pk).update(segment=segment, entry_points=0)
    austrian, german = consenting(country="AT"), consenting(country="DE")
    invite(raffle)
    with pytest.raises(RaffleClosed, match="invited"):
        raffles.raffle_enter(campaign_id=raffle.pk, member_id=german.pk)
    with pytest.raises(RaffleClosed, match="ended"):
        raffles.raffle_enter(campaign_id=raffle.pk, member_id=austrian.pk, now=timezone.now() + timedelta(days=8))
    raffles.raffle_enter(campaign_id=raffle.pk, member_id=austrian.pk)


def test_a_raffle_not_yet_sent_takes_no_entries(raffle):
    member = consenting(points=100)
    with pytest.raises(RaffleClosed):
        raffles.raffle_enter(campaign_id=raffle.pk, member_id=member.pk)


def test_the_draw_is_recorded_reproducible_and_issues_prize_vouchers(raffle):
    members = [consenting(points=100) for _ in range(6)]
    invite(raffle)
    for member in members:
        raffles.raffle_enter(campaign_id=raffle.pk, member_id=member.pk)
    after_deadline = raffle.entry_deadline + timedelta(minutes=1)
    with pytest.raises(RaffleClosed, match="open until"):
        raffles.raffle_draw(campaign_id=raffle.pk, now=raffle.entry_deadline - timedelta(minutes=1))
    winners = raffles.raffle_draw(campaign_id=raffle.pk, now=after_deadline)
    raffle.refresh_from_db()
    assert len(winners) == 2 and raffle.drawn_at == after_deadline
    assert len(raffle.draw_seed) == 32 and len(raffle.draw_entries_hash) == 64
    # Anyone with the tickets and the seed gets the same winners.
    tickets = list(RaffleEntry.objects.filter(campaign=raffle).values_list("pk", flat=True))
    assert raffle.draw_entries_hash == raffles.tickets_fingerprint(tickets)
    assert set(raffles.draw_winners(tickets, seed=raffle.draw_seed, fingerprint=raffle.draw_entries_hash,
                                    count=2)) == {entry.pk for entry in winners}
    assert raffle_verify(raffle)
    vouchers = Redemption.objects.filter(source=Redemption.Source.CAMPAIGN, reward=raffle.prize)
    assert {voucher.member_id for voucher in vouchers} == {entry.member_id for entry in winners}
    assert all(voucher.points == 0 for voucher in vouchers)
    assert set(RaffleEntry.objects.filter(won=True).values_list("prize_id", flat=True)) == {v.pk for v in vouchers}
    with pytest.raises(RaffleClosed, match="drawn"):
        raffles.raffle_draw(campaign_id=raffle.pk, now=after_deadline)


def test_the_proof_fails_if_the_entries_change_after_the_draw(raffle):
    members = [consenting(points=100) for _ in range(3)]
    invite(raffle)
    for member in members[:2]:
        raffles.raffle_enter(campaign_id=raffle.pk, member_id=member.pk)
    raffles.raffle_draw(campaign_id=raffle.pk, now=raffle.entry_deadline + timedelta(hours=1))
    raffle.refresh_from_db()
    assert raffle_verify(raffle)
    factories.RaffleEntryFactory(campaign=raffle, member=members[2])  # smuggled in afterwards
    assert not raffle_verify(raffle)


def test_the_same_seed_and_tickets_always_give_the_same_winners():
    tickets = list(range(1, 101))
    fingerprint = raffles.tickets_fingerprint(tickets)
    first = raffles.draw_winners(tickets, seed="abc", fingerprint=fingerprint, count=5)
    assert first == raffles.draw_winners(list(reversed(tickets)), seed="abc", fingerprint=fingerprint, count=5)
    assert first != raffles.draw_winners(tickets, seed="abd", fingerprint=fingerprint, count=5)
    assert raffles.draw_winners(tickets[:3], seed="abc", fingerprint=fingerprint, count=5) == \
        raffles.draw_winners(tickets[:3], seed="abc", fingerprint=fingerprint, count=3)
    assert raffles.tickets_fingerprint(tickets) != raffles.tickets_fingerprint(tickets[:-1])


def test_the_winners_follow_the_published_recipe_with_nothing_but_sha256():
    """What the raffle page tells the public to do, done with hashlib alone."""
    import hashlib

    tickets = [17, 4, 230, 99, 5]
    text = "".join(f"{ticket}\n" for ticket in sorted(tickets))
    fingerprint = hashlib.sha256(text.encode()).hexdigest()
    assert raffles.tickets_text(tickets) == text and raffles.tickets_fingerprint(tickets) == fingerprint
    scores = {ticket: hashlib.sha256(f"s33d:{fingerprint}:{ticket}".encode()).hexdigest() for ticket in tickets}
    assert raffles.draw_winners(tickets, seed="s33d", fingerprint=fingerprint, count=2) == \
        sorted(tickets, key=scores.get)[:2]


def test_a_prize_out_of_stock_does_not_stop_the_draw(raffle):
    from rewards.models import Reward

    Reward.objects.filter(pk=raffle.prize_id).update(stock=1)
    Campaign.objects.filter(pk=raffle.pk).update(entry_points=0)
    members = [consenting() for _ in range(4)]
    invite(raffle)
    for member in members:
        raffles.raffle_enter(campaign_id=raffle.pk, member_id=member.pk)
    winners = raffles.raffle_draw(campaign_id=raffle.pk, now=raffle.entry_deadline + timedelta(minutes=1))
    assert len(winners) == 2
    assert sorted(entry.prize_id is None for entry in winners) == [False, True]
    raffle.refresh_from_db()
    assert raffle_verify(raffle)
