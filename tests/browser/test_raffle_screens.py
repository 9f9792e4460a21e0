"""Raffles in a real browser: a member enters from the portal dashboard on a phone (the seed's
hash is shown, nothing scrolls sideways), staff draw the winners in the console at desktop
width, and the public page shows the proof; screenshots at phone and desktop width for review."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from campaigns import raffles, services
from campaigns.models import Campaign, RaffleEntry
from members.services import member_link_or_enrol
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def raffle(*, entry_points: int = 0, deadline_in: timedelta = timedelta(days=5)) -> Campaign:
    prize = factories.RewardFactory(name_de="Kaffeemaschine", name_en="Coffee machine", in_catalogue=False)
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, name="Verlosung: Kaffeemaschine",
                                         entry_points=entry_points, winners_count=2, prize=prize,
                                         entry_deadline=timezone.now() + deadline_in)
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    campaign.refresh_from_db()
    return campaign


def test_a_member_enters_a_raffle_from_the_dashboard_on_a_phone(page, live_server, sign_in, screenshot):
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    member = member_link_or_enrol(user=user, email="erika@example.org")
    campaign = raffle()
    sign_in(user)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("portal:dashboard"))

    card = page.locator('[data-testid="raffles-card"]')
    expect(card).to_be_visible()
    expect(card.get_by_text(campaign.draw_seed_hash)).to_be_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, "raffle-dashboard-card")
    card.get_by_role("button", name=re.compile("Take part|Teilnehmen")).click()

    entry = RaffleEntry.objects.get()
    assert entry.member_id == member.pk
    expect(page.get_by_text(re.compile(f"ticket {entry.ticket}|Los {entry.ticket}")).first).to_be_visible()
    expect(page.locator('[data-testid="raffle-entered"]')).to_be_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    page.goto(live_server.url + reverse("raffles:portal"))
    expect(page.locator('[data-testid="raffle-entry"]')).to_have_count(1)
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, "raffle-portal-page")


def test_staff_draw_the_winners_in_the_console_and_the_public_page_shows_the_proof(page, live_server, sign_in,
                                                                                    screenshot):
    from core.roles import ensure_group_permissions

    factories.tier_ladder()
    ensure_group_permissions()
    campaign = raffle()
    for _ in range(6):
        raffles.raffle_enter(campaign_id=campaign.pk, member_id=factories.enrolled_member().pk)
    Campaign.objects.filter(pk=campaign.pk).update(entry_deadline=timezone.now() - timedelta(minutes=1))
    sign_in(factories.staff_in("Marketing"))
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    panel = page.locator('[data-testid="raffle"]')
    expect(panel.locator('[data-testid="raffle-seed-hash"]')).to_have_text(campaign.draw_seed_hash)
    expect(panel.locator('[data-testid="raffle-entries"]')).to_have_text("6")
    panel.locator('[data-testid="raffle-draw"]').click()
    page.get_by_role("button", name=re.compile("Confirm|Bestätigen")).click()

    expect(page.locator('[data-testid="raffle-seed"]')).to_have_text(campaign.draw_seed)
    expect(page.locator('[data-testid="raffle-winners"] tbody tr')).to_have_count(2)
    screenshot(page, "raffle-console-drawn")
    campaign.refresh_from_db()
    assert campaign.drawn_at is not None

    page.goto(live_server.url + reverse("campaigns:raffle_proof", args=[campaign.pk]))
    expect(page.locator('[data-testid="seed"]')).to_have_text(campaign.draw_seed)
    expect(page.locator('[data-testid="fingerprint"]')).to_have_text(campaign.draw_entries_hash)
    winners = ", ".join(str(pk) for pk in RaffleEntry.objects.filter(won=True).order_by("pk")
                        .values_list("pk", flat=True))
    expect(page.locator('[data-testid="winning-tickets"]')).to_have_text(winners)
    page.set_viewport_size(PHONE)
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, "raffle-public-proof")


def test_the_raffle_pages_load_without_csp_violations(page, live_server, sign_in):
    from tests.browser.test_content_security_policy import ViolationWatcher

    factories.tier_ladder()
    user = factories.UserFactory(email="paula@example.org")
    member = member_link_or_enrol(user=user, email="paula@example.org")
    campaign = raffle()
    raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
    sign_in(user)
    watcher = ViolationWatcher(page)
    for url in (reverse("raffles:portal"), reverse("portal:dashboard"),
                reverse("campaigns:raffle_proof", args=[campaign.pk])):
        watcher.assert_clean(live_server.url + url)
