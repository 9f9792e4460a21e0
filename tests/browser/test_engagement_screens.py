"""Challenges in a real browser: a member's challenges page and dashboard card at phone and desktop
width, and a marketer creating a challenge in the console (a mistake first, then the fix)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from engagement.engine import badge_award
from engagement.models import Challenge
from members.services import member_link_or_enrol
from rewards.purchases import purchase_record
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lena(db):
    factories.tier_ladder()
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)
    user = factories.UserFactory(email="lena@example.org")
    return user, member_link_or_enrol(user=user, email="lena@example.org")


def _no_sideways_scrolling(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_member_follows_challenge_progress_and_sees_badges(page, live_server, sign_in, lena, screenshot, viewport):
    user, member = lena
    partner = factories.PartnerFactory(name="Testmarkt GmbH")
    badge = factories.BadgeFactory(name_de="Stammkunde", name_en="Regular", picture="trophy")
    factories.ChallengeFactory(name_de="Fünf Einkäufe", name_en="Five visits", target=5)
    factories.ChallengeFactory(name_de="Erster Einkauf", name_en="First visit", target=1, badge=badge)
    for number in range(2):
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"B-{number}", amount=Decimal("12"))
    badge_award(member_id=member.pk, badge_id=factories.BadgeFactory(name_de="Entdecker", picture="leaf").pk)
    page.set_viewport_size(viewport)
    sign_in(user)

    page.goto(live_server.url + reverse("portal:dashboard"))
    card = page.locator('[data-testid="engagement-card"]')
    expect(card).to_be_visible()
    expect(card.locator('[data-testid="dashboard-streak"]')).to_contain_text("1 week")
    expect(card.get_by_role("img", name="Stammkunde")).to_be_visible()
    expect(card.get_by_role("progressbar", name="Progress in Fünf Einkäufe")).to_have_attribute("aria-valuenow", "40")

    page.goto(live_server.url + reverse("engagement:portal"))
    bar = page.get_by_role("progressbar", name="Progress in Fünf Einkäufe")
    expect(bar).to_have_attribute("aria-valuenow", "40")
    expect(bar).to_have_attribute("aria-valuetext", "2 of 5")
    expect(page.locator('[data-testid="completed-challenge"]')).to_contain_text("Erster Einkauf")
    expect(page.locator('[data-testid="badge"]')).to_have_count(2)
    expect(page.locator('[data-testid="streak"]')).to_contain_text("1 week in a row")
    assert page.evaluate("[...document.images].every(image => image.complete && image.naturalWidth > 0)")
    assert _no_sideways_scrolling(page)
    if viewport is PHONE:
        screenshot(page, "engagement-portal")


def test_a_marketer_creates_a_challenge_in_the_console(page, live_server, sign_in, db):
    factories.tier_ladder()
    page.set_viewport_size(DESKTOP)
    sign_in(factories.staff_in("Marketing"))
    page.goto(live_server.url + reverse("admin:engagement_challenge_add"))
    page.fill("input[name=name_de]", "Bio entdecken")
    page.fill("input[name=name_en]", "Discover organic")
    page.select_option("select[name=goal]", "category")
    page.fill("input[name=target]", "1")
    page.fill("input[name=category]", "bio")
    page.fill("input[name=reward_points]", "0")
    page.locator("[name=_save]").first.click()
    expect(page.locator("body")).to_contain_text("Give a reward")
    assert not Challenge.objects.exists()

    page.fill("input[name=reward_points]", "200")
    page.locator("[name=_save]").first.click()
    page.wait_for_url(f"**{reverse('admin:engagement_challenge_changelist')}")
    challenge = Challenge.objects.get()
    assert (challenge.goal, challenge.category, challenge.reward_points) == ("category", "bio", 200)
    expect(page.locator("#result_list")).to_contain_text("Bio entdecken")
