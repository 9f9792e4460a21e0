"""The referred friend's side, on a phone: the sign-up page reached through Anna's link names
her (first name only), a dead link names nobody, and once Ben is in, his dashboard says who
invited him, what he must do and when his bonus arrives."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from members.models import Member
from members.services import member_link_or_enrol
from referrals import services
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _member(email: str, first_name: str, last_name: str) -> Member:
    user = factories.UserFactory(email=email)
    member = member_link_or_enrol(user=user, email=email)
    Member.objects.filter(pk=member.pk).update(first_name=first_name, last_name=last_name)
    member.refresh_from_db()
    return member


@pytest.fixture
def anna(db):
    factories.tier_ladder()
    factories.ReferralProgramFactory()
    return _member("anna@example.org", "Anna", "Berger")


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_friend_sees_who_invited_them_and_when_the_bonus_arrives(page, live_server, anna, sign_in,
                                                                    screenshot):
    assert page.viewport_size["width"] == 390  # phone width (tests/browser/conftest.py)
    page.goto(f"{live_server.url}/r/NOTACODE")
    page.wait_for_url("**/accounts/signup/")
    expect(page.locator("[data-referral-inviter]")).to_have_count(0)

    page.goto(f"{live_server.url}/r/{factories.referral_code(anna)}")
    page.wait_for_url("**/accounts/signup/")
    inviter = page.locator("main [data-referral-inviter]")
    expect(inviter).to_contain_text("You were invited by Anna.")
    expect(page.locator("main")).not_to_contain_text("Berger")
    expect(page.locator("main")).not_to_contain_text("anna@example.org")
    _no_sideways_scroll(page)
    screenshot(page, "referrals-invited-signup")

    ben = _member("ben@example.org", "Ben", "Schulz")
    services.referral_attach(referee_id=ben.pk, code=factories.referral_code(anna), channel="api")
    page.context.clear_cookies()
    sign_in(ben.user)
    page.goto(f"{live_server.url}/konto/")
    card = page.locator("section.referral-received-card")
    expect(card).to_contain_text("You were invited by Anna.")
    expect(card).to_contain_text("make a first purchase of at least")
    expect(card).to_contain_text("Your welcome bonus: 250 points.")
    expect(card).to_contain_text("It arrives 14 days after the purchase")
    expect(card).not_to_contain_text("Berger")
    expect(card).not_to_contain_text(anna.card_number)
    _no_sideways_scroll(page)
    screenshot(page, "referrals-invited-dashboard")
