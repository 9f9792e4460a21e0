"""Commit and reveal: a raffle's seed is drawn and its SHA-256 published when the raffle is
started, the seed can't change after that, the draw (only after entries close) reveals it, and
anyone can re-check the winners from the public page."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from campaigns import raffles, services
from campaigns.errors import CampaignNotReady, RaffleClosed
from campaigns.models import Campaign, RaffleEntry
from campaigns.selectors import raffle_verify
from members.models import Member
from tests import factories

LINK_TEXT = "Mitmachen: {{ raffle_url }}"


def make_raffle(*, deadline_in: timedelta | None = timedelta(days=7), **fields) -> Campaign:
    fields.setdefault("winners_count", 2)
    deadline = timezone.now() + deadline_in if deadline_in is not None else None
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, entry_deadline=deadline, **fields)
    factories.VariantFactory(campaign=campaign, body_de=LINK_TEXT, body_en="")
    return campaign


def opened(campaign: Campaign, **launch) -> Campaign:
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False, **launch)
    services.campaign_run_inline(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def entered(campaign: Campaign, count: int) -> list[Member]:
    members = [factories.enrolled_member() for _ in range(count)]
    for member in members:
        raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
    return members


def test_scheduling_a_raffle_commits_a_seed_and_publishes_only_its_hash(tiers, client):
    campaign = make_raffle(scheduled_at=timezone.now() + timedelta(days=1))
    assert campaign.draw_seed_hash == ""
    services.campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert len(campaign.draw_seed) == 32 and campaign.seed_committed_at is not None
    assert campaign.draw_seed_hash == hashlib.sha256(campaign.draw_seed.encode()).hexdigest()

    page = client.get(reverse("campaigns:raffle_proof", args=[campaign.pk])).content.decode()
    assert campaign.draw_seed_hash in page
    assert campaign.draw_seed not in page
    assert client.get(reverse("campaigns:raffle_tickets", args=[campaign.pk])).status_code == 404


def test_the_seed_committed_at_the_start_is_the_one_revealed_at_the_draw(tiers, client):
    campaign = opened(make_raffle())
    committed_seed, committed_hash = campaign.draw_seed, campaign.draw_seed_hash
    entered(campaign, 5)
    raffles.raffle_draw(campaign_id=campaign.pk, now=campaign.entry_deadline + timedelta(seconds=1))
    campaign.refresh_from_db()
    assert (campaign.draw_seed, campaign.draw_seed_hash) == (committed_seed, committed_hash)
    page = client.get(reverse("campaigns:raffle_proof", args=[campaign.pk])).content.decode()
    assert committed_seed in page and committed_hash in page and campaign.draw_entries_hash in page


def test_the_database_refuses_to_change_a_committed_seed_or_its_hash(tiers):
    campaign = opened(make_raffle())
    other = "0" * 32
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(draw_seed=other)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(draw_seed=other, draw_seed_hash=raffles.seed_hash(other))
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, draw_seed="a", draw_seed_hash=raffles.seed_hash("b"))
    campaign.name = "Renamed"
    campaign.save()  # everything else about the raffle can still be saved


def test_starting_a_raffle_again_keeps_its_seed(tiers):
    campaign = make_raffle(scheduled_at=timezone.now() + timedelta(days=1))
    services.campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    seed = campaign.draw_seed
    assert not raffles.raffle_seed_commit(campaign, timezone.now())
    services.campaign_pause(campaign_id=campaign.pk)
    services.campaign_resume(campaign_id=campaign.pk)
    services.campaigns_start_due(now=timezone.now() + timedelta(days=2))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING and campaign.draw_seed == seed


def test_a_draw_before_entries_close_is_refused(tiers):
    campaign = opened(make_raffle())
    entered(campaign, 3)
    with pytest.raises(RaffleClosed, match="open until"):
        raffles.raffle_draw(campaign_id=campaign.pk, now=campaign.entry_deadline)
    with pytest.raises(RaffleClosed, match="open until"):
        raffles.raffle_draw(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.drawn_at is None and campaign.draw_entries_hash == ""
    assert not RaffleEntry.objects.filter(won=True).exists()


def test_a_raffle_not_started_cannot_be_drawn(tiers):
    campaign = make_raffle(deadline_in=timedelta(days=-1))
    with pytest.raises(RaffleClosed, match="not started"):
        raffles.raffle_draw(campaign_id=campaign.pk)


def test_a_raffle_needs_a_deadline_after_its_start(tiers):
    without = make_raffle(deadline_in=None)
    with pytest.raises(CampaignNotReady, match="entry deadline"):
        services.campaign_launch(campaign_id=without.pk)
    past = make_raffle(deadline_in=timedelta(hours=-1))
    with pytest.raises(CampaignNotReady, match="after the start"):
        services.campaign_launch(campaign_id=past.pk)
    before_start = make_raffle(deadline_in=timedelta(days=1), scheduled_at=timezone.now() + timedelta(days=2))
    with pytest.raises(CampaignNotReady, match="after the start"):
        services.campaign_launch(campaign_id=before_start.pk)
    assert not Campaign.objects.exclude(draw_seed_hash="").exists()


def test_anyone_can_recheck_the_draw_from_the_public_page(tiers, client):
    campaign = opened(make_raffle(winners_count=3))
    entered(campaign, 12)
    winners = raffles.raffle_draw(campaign_id=campaign.pk, now=campaign.entry_deadline + timedelta(minutes=1))
    campaign.refresh_from_db()

    # What an outsider has: the hash published before, the seed and fingerprint revealed, the list.
    tickets_text = client.get(reverse("campaigns:raffle_tickets", args=[campaign.pk])).content.decode()
    tickets = [int(line) for line in tickets_text.splitlines()]
    assert hashlib.sha256(tickets_text.encode()).hexdigest() == campaign.draw_entries_hash
    assert hashlib.sha256(campaign.draw_seed.encode()).hexdigest() == campaign.draw_seed_hash
    scores = {ticket: hashlib.sha256(f"{campaign.draw_seed}:{campaign.draw_entries_hash}:{ticket}".encode())
              .hexdigest() for ticket in tickets}
    expected = sorted(tickets, key=scores.get)[:3]
    assert sorted(expected) == [entry.pk for entry in winners]

    page = client.get(reverse("campaigns:raffle_proof", args=[campaign.pk])).content.decode()
    shown = page.split('data-testid="winning-tickets">', 1)[1].split("<", 1)[0]
    assert shown == ", ".join(str(ticket) for ticket in sorted(expected))
    assert all(entry.member.email not in page and entry.member.last_name not in page for entry in winners)
    assert raffle_verify(campaign)


def test_the_public_page_exists_only_for_started_raffles(tiers, client):
    draft = make_raffle()
    broadcast = factories.CampaignFactory()
    assert client.get(reverse("campaigns:raffle_proof", args=[draft.pk])).status_code == 404
    assert client.get(reverse("campaigns:raffle_proof", args=[broadcast.pk])).status_code == 404


def test_a_raffle_drawn_before_seeds_were_committed_keeps_its_proof(tiers):
    campaign = make_raffle(deadline_in=timedelta(days=-1), status=Campaign.Status.DONE)
    members = [factories.enrolled_member() for _ in range(4)]
    entries = [factories.RaffleEntryFactory(campaign=campaign, member=member) for member in members]
    pairs = [(entry.pk, entry.member_id) for entry in entries]
    winners = raffles.legacy_draw_winners(pairs, seed="old", count=2)
    RaffleEntry.objects.filter(pk__in=winners).update(won=True)
    Campaign.objects.filter(pk=campaign.pk).update(draw_seed="old", drawn_at=timezone.now(),
                                                   draw_entries_hash=raffles.legacy_entries_fingerprint(pairs))
    campaign.refresh_from_db()
    assert raffle_verify(campaign)


def test_the_invitation_link_page_shows_the_hash_before_and_the_seed_after_the_draw(tiers, client):
    from campaigns import links
    from campaigns.models import Message

    member = factories.enrolled_member()
    factories.ConsentRecordFactory(member=member, purpose="email")
    campaign = opened(make_raffle())
    url = links.raffle_url(Message.objects.get(campaign=campaign, member=member).pk)
    path = url.removeprefix("http://127.0.0.1:8000")
    page = client.post(path).content.decode()
    entry = RaffleEntry.objects.get(member=member)
    assert f"Your ticket number: {entry.ticket}" in page
    assert campaign.draw_seed_hash in page and campaign.draw_seed not in page
    raffles.raffle_draw(campaign_id=campaign.pk, now=campaign.entry_deadline + timedelta(minutes=1))
    assert campaign.draw_seed in client.get(path).content.decode()
