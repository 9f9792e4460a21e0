"""The raffle in the console: the published hash, entries, close time and the draw button (for
those allowed to draw, once entries have closed); after the draw the seed and the winners, in
a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import raffles, services
from campaigns.models import Campaign, RaffleEntry
from tests import factories


@pytest.fixture
def staff_client(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def started_raffle(entries: int, *, winners: int = 2) -> Campaign:
    prize = factories.RewardFactory(name_de="Kaffeemaschine", in_catalogue=False)
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, winners_count=winners, prize=prize,
                                         entry_deadline=timezone.now() + timedelta(days=2))
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    for _ in range(entries):
        raffles.raffle_enter(campaign_id=campaign.pk, member_id=factories.enrolled_member().pk)
    campaign.refresh_from_db()
    return campaign


def close(campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(entry_deadline=timezone.now() - timedelta(minutes=1))


def change_page(client, campaign: Campaign) -> str:
    response = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_an_open_raffle_shows_its_hash_entries_and_close_but_not_its_seed(staff_client, tiers):
    campaign = started_raffle(3)
    page = change_page(staff_client, campaign)
    assert campaign.draw_seed_hash in page and campaign.draw_seed not in page
    assert 'data-testid="raffle-entries">3<' in page
    assert "revealed at the draw" in page
    assert "Not ready to draw: entries are open until" in page and 'data-testid="raffle-draw"' not in page
    assert reverse("campaigns:raffle_proof", args=[campaign.pk]) in page


def test_after_the_close_the_draw_button_leads_to_a_confirmed_draw(staff_client, tiers):
    campaign = started_raffle(5)
    close(campaign)
    page = change_page(staff_client, campaign)
    draw_url = reverse("admin:campaigns_campaign_do", args=[campaign.pk, "draw"])
    assert 'data-testid="raffle-draw"' in page and draw_url in page
    assert staff_client.get(draw_url).status_code == 200  # the confirmation page changes nothing
    assert Campaign.objects.get(pk=campaign.pk).drawn_at is None
    assert staff_client.post(draw_url).status_code == 302
    campaign.refresh_from_db()
    page = change_page(staff_client, campaign)
    assert f'data-testid="raffle-seed">{campaign.draw_seed}<' in page
    assert campaign.draw_entries_hash in page
    winners = RaffleEntry.objects.filter(campaign=campaign, won=True).select_related("member", "prize")
    assert winners.count() == 2
    for entry in winners:
        assert entry.member.customer_number in page and entry.prize.display_code in page
    assert 'data-testid="raffle-draw"' not in page


def test_a_draw_before_the_close_is_refused_with_a_message(staff_client, tiers):
    campaign = started_raffle(2)
    response = staff_client.post(reverse("admin:campaigns_campaign_do", args=[campaign.pk, "draw"]), follow=True)
    assert "entries are open until" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).drawn_at is None


def test_only_staff_allowed_to_draw_see_the_button_and_may_draw(client, tiers):
    from core.roles import ensure_group_permissions

    ensure_group_permissions()
    campaign = started_raffle(2)
    close(campaign)
    draw_url = reverse("admin:campaigns_campaign_do", args=[campaign.pk, "draw"])
    viewer = factories.StaffUserFactory()
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(viewer)
    assert 'data-testid="raffle-draw"' not in change_page(client, campaign)
    assert client.post(draw_url).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).drawn_at is None
    client.force_login(factories.staff_in("Marketing"))
    assert 'data-testid="raffle-draw"' in change_page(client, campaign)
    assert client.post(draw_url).status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).drawn_at is not None


def test_the_raffle_page_needs_the_same_queries_for_two_winners_or_ten(staff_client, tiers):
    def queries(campaign: Campaign) -> int:
        with CaptureQueriesContext(connection) as captured:
            change_page(staff_client, campaign)
        return len(captured)

    few = started_raffle(4, winners=2)
    many = started_raffle(14, winners=10)
    for campaign in (few, many):
        close(campaign)
        raffles.raffle_draw(campaign_id=campaign.pk)
    assert RaffleEntry.objects.filter(campaign=many, won=True).count() == 10
    assert queries(many) == queries(few)


def test_a_started_raffles_deadline_can_move_but_not_into_the_past(staff_client, tiers):
    campaign = started_raffle(1)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="winners_count"' not in page  # part of the published rules

    def post(when):
        local = timezone.localtime(when)
        variant = campaign.variants.get()
        return staff_client.post(url, {"name": campaign.name, "entry_deadline_0": local.strftime("%Y-%m-%d"),
                                       "entry_deadline_1": local.strftime("%H:%M:%S"), "prize": campaign.prize_id,
                                       "variants-TOTAL_FORMS": "1", "variants-INITIAL_FORMS": "1",
                                       "variants-MIN_NUM_FORMS": "1", "variants-MAX_NUM_FORMS": "1000",
                                       "variants-0-id": variant.pk, "variants-0-campaign": campaign.pk})

    response = post(timezone.now() - timedelta(hours=1))
    assert response.status_code == 200
    assert "Entries can only be closed at a time in the future." in response.content.decode()
    later = timezone.now() + timedelta(days=9)
    assert post(later).status_code == 302
    campaign.refresh_from_db()
    assert abs(campaign.entry_deadline - later) < timedelta(seconds=2)
