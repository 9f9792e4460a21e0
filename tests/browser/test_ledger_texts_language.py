"""A member who takes part in a raffle on the German portal and then switches to English reads
the entry in English on the activity page (#23): ledger texts are translated when shown."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from playwright.sync_api import expect

from campaigns import services
from campaigns.models import Campaign
from members.models import Member
from members.services import member_link_or_enrol
from tests import factories
from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]




def test_a_raffle_entry_made_in_german_reads_in_english_after_switching(page, live_server, sign_in,
                                                                      german_catalogue):
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    member = member_link_or_enrol(user=user, email="erika@example.org")
    factories.PointEntryFactory(member=member, points=100)
    Member.objects.filter(pk=member.pk).update(points_balance=100)
    prize = factories.RewardFactory(name_de="Kaffeemaschine", name_en="Coffee machine", in_catalogue=False)
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, name="Sommerverlosung", entry_points=30,
                                         winners_count=1, prize=prize,
                                         entry_deadline=timezone.now() + timedelta(days=5))
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    sign_in(user)
    page.set_viewport_size(PHONE)

    page.goto(live_server.url + reverse("portal:dashboard"))  # German: no language prefix
    page.locator('[data-testid="raffles-card"]').get_by_role("button", name="Teilnehmen").click()
    expect(page.locator('[data-testid="raffle-entered"]')).to_be_visible()

    page.goto(live_server.url + reverse("portal:activity"))
    expect(page.get_by_text("Gewinnspielteilnahme: Sommerverlosung")).to_be_visible()
    with translation.override("en"):
        english = reverse("portal:activity")
    page.goto(live_server.url + english)
    expect(page.get_by_text("Raffle entry: Sommerverlosung")).to_be_visible()
    expect(page.get_by_text(re.compile("Gewinnspielteilnahme"))).to_have_count(0)
