"""The demo campaigns: finished ones with results, a raffle drawn, one scheduled, one triggered;
a second run adds nothing."""

from __future__ import annotations

from campaigns.demo import seed_campaigns_demo
from campaigns.models import Campaign, Message, RaffleEntry, Segment
from campaigns.selectors import campaign_results, raffle_verify
from rewards.demo import seed_catalogue_basics, seed_members, seed_rewards_catalogue


def test_demo_campaigns_have_results_and_a_second_run_adds_nothing(db):
    partner, stores = seed_catalogue_basics()
    seed_rewards_catalogue()
    seed_members(count=25, partner=partner, stores=stores)
    first = seed_campaigns_demo()
    assert len(first["campaigns_created"]) == 6
    statuses = dict(Campaign.objects.values_list("name", "status"))
    assert Campaign.objects.get(channel=Campaign.Channel.PUSH).status == Campaign.Status.DRAFT
    assert statuses["Einladung zum Sommerfest"] == Campaign.Status.SCHEDULED
    assert statuses["Geburtstagsgruß"] == Campaign.Status.ACTIVE
    finished = Campaign.objects.filter(status=Campaign.Status.DONE)
    assert finished.count() == 4
    newsletter = Campaign.objects.get(name="Frühlings-Newsletter")
    results = campaign_results(newsletter)
    assert results.total == Message.objects.filter(campaign=newsletter).count() > 0
    assert results.pending == 0
    raffle = Campaign.objects.get(kind=Campaign.Kind.RAFFLE)
    assert raffle.drawn_at is not None and raffle_verify(raffle)

    counts = (Segment.objects.count(), Campaign.objects.count(), Message.objects.count(), RaffleEntry.objects.count())
    second = seed_campaigns_demo()
    assert second["campaigns_created"] == []
    assert counts == (Segment.objects.count(), Campaign.objects.count(), Message.objects.count(),
                      RaffleEntry.objects.count())
