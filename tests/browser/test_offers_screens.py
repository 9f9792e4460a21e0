"""Coupons in a real browser: a member activates a coupon in the portal on a phone; a marketer
creates an offer in the console at desktop width and assigns it to its audience."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from members.models import Member
from members.services import member_link_or_enrol
from offers.models import MemberOffer, Offer
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def erika(db):
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    Member.objects.filter(pk=member.pk).update(first_name="Erika")
    return member


def test_a_member_activates_a_coupon_on_the_phone(page, live_server, sign_in, erika, screenshot):
    coupon = factories.MemberOfferFactory(member=erika, offer=factories.OfferFactory(
        name_de="Bio-Woche: doppelte Punkte auf Bio-Produkte", name_en="Organic week: double points",
        description_en="Double points on every organic product.", category="Bio"))
    factories.activated_coupon(erika, name_de="Filial-Bonus", name_en="Store bonus", effect="bonus", value=200)
    sign_in(erika.user)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + reverse("portal:dashboard"))
    card = page.locator(".coupons-card")
    expect(card).to_contain_text("Bio-Woche: doppelte Punkte")  # the browser asks for German
    expect(card).to_contain_text("Filial-Bonus")
    card.get_by_role("link", name=re.compile("All coupons")).click()
    page.wait_for_url(re.compile(r".*/konto/coupons/$"))
    target = page.locator('[data-testid="coupon"]', has_text="Bio-Woche")
    expect(target.locator('[data-testid="coupon-state"]')).to_have_text("ready to activate")
    screenshot(page, "coupons-before")
    target.locator('[data-testid="activate"]').click()  # "Aktivieren": Django's catalogue knows the word
    page.wait_for_url(re.compile(r".*/konto/coupons/$"))
    expect(page.locator(".message--success")).to_contain_text("Bio-Woche: doppelte Punkte")
    expect(page.locator('[data-testid="coupon"]', has_text="Bio-Woche")
           .locator('[data-testid="coupon-state"]')).to_have_text("activated")
    screenshot(page, "coupons-activated")
    coupon.refresh_from_db()
    assert coupon.activated_at is not None
    # Nothing overflows the phone's width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_marketer_creates_and_assigns_an_offer_in_the_console(page, live_server, sign_in, screenshot):
    factories.tier_ladder()
    for _ in range(3):
        factories.enrolled_member()
    marketing = factories.staff_in("Marketing")
    sign_in(marketing)
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + reverse("admin:offers_offer_add"))
    page.fill("#id_name_de", "Kaffee-Coupon")
    page.fill("#id_name_en", "Coffee coupon")
    page.select_option("#id_effect", "bonus")
    page.fill("#id_value", "150")
    page.fill("#id_category", "Kaffee")
    today = timezone.localdate()
    page.fill("#id_valid_from_0", today.isoformat())
    page.fill("#id_valid_from_1", "00:00:00")
    page.fill("#id_valid_until_0", (today + timedelta(days=14)).isoformat())
    page.fill("#id_valid_until_1", "23:59:00")
    page.fill("#id_holdout_percent", "0")
    screenshot(page, "console-offer-add")
    page.locator("button[name=_save], input[name=_save]").first.click()
    page.wait_for_url(re.compile(r".*/offers/offer/$"))
    offer = Offer.objects.get(name_de="Kaffee-Coupon")
    assert (offer.effect, offer.value, offer.category) == ("bonus", 150, "Kaffee")

    page.locator(f"input[name=_selected_action][value='{offer.pk}']").check()
    page.select_option("select[name=action]", "assign_action")
    page.locator("button[name=index], button[type=submit][title], #changelist-form button[type=submit]").first.click()
    expect(page.get_by_text(re.compile("3 members added"))).to_be_visible()
    assert MemberOffer.objects.filter(offer=offer).count() == 3
    page.goto(live_server.url + reverse("admin:offers_offer_change", args=[offer.pk]))
    expect(page.locator('[data-testid="offer-results"]')).to_contain_text("Got the coupon")
    screenshot(page, "console-offer-results")
