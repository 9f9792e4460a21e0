"""A member's whole journey through the portal in a real browser: sign up, verify the e-mail from
the captured message, see balance and tier, redeem a reward, download the data, delete the
account. Screenshots of the main pages at phone and desktop width go to test-artifacts/."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from members.models import ConsentRecord, Member
from rewards.demo import seed_catalogue_basics, seed_rewards_catalogue
from rewards.models import Redemption, Reward
from rewards.purchases import LineData, purchase_record
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "lena.schmidt@example.org"
PASSWORD = "Sommerwiese-2026!"


@pytest.fixture
def programme(db):
    """The demo retailer's tiers, stores, catalogue and earning rules."""
    partner, stores = seed_catalogue_basics()
    seed_rewards_catalogue()
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", name_en="1 point per euro", effect="base", value=1,
                                 priority=1)
    factories.EarningRuleFactory(name_de="Doppelte Punkte auf Kaffee", name_en="Double points on coffee",
                                 effect="multiplier", value=2, category="Kaffee", priority=50)
    return partner, stores


def _shop(member: Member, partner, stores) -> None:
    """A year of shopping, booked when it happened: Silver tier, some points expiring soon."""
    now = timezone.now()
    history = [(now - timedelta(days=725), "Feinkost", "64.90"), (now - timedelta(days=200), "Wein", "189.00"),
               (now - timedelta(days=60), "Feinkost", "148.50"), (now - timedelta(days=3), "Kaffee", "23.80")]
    for number, (at, category, amount) in enumerate(history, start=1):
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"BON-{number:04d}",
                        amount=Decimal(amount), occurred_at=at, booked_at=at, store=stores[number % 3],
                        lines=[LineData(amount=Decimal(amount), category=category)])


def test_member_journey_from_sign_up_to_deleting_the_account(page, live_server, programme, screenshot, settings):
    settings.LOYALTY_PUBLIC_URL = live_server.url  # mail links point to the public address
    partner, stores = programme
    base = live_server.url

    # Public pages.
    page.goto(base + "/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    screenshot(page, "home")
    page.goto(base + "/bonusbedingungen/")
    expect(page.locator("article.terms")).to_contain_text("Gold")
    screenshot(page, "terms")

    # Sign up and verify the address from the captured e-mail.
    page.goto(base + "/accounts/signup/")
    screenshot(page, "signup")
    page.fill("input[name=first_name]", "Lena")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/accounts/confirm-email/$"))
    assert not Member.objects.filter(email=EMAIL).exists()  # not before the address is verified
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/konto/$"))
    member = Member.objects.get(email=EMAIL)
    assert member.user.email == EMAIL
    assert member.first_name == "Lena"

    # Points arrive from the tills; the dashboard shows balance, tier and expiring points.
    _shop(member, partner, stores)
    member.refresh_from_db()
    page.reload()
    expect(page.get_by_test_id("balance")).to_have_text(f"{member.points_balance:,}".replace(",", "."))
    expect(page.get_by_test_id("tier")).to_have_text("Silber")
    expect(page.locator(".expiring")).to_be_visible()
    expect(page.locator(".loyalty-card svg.barcode")).to_be_visible()
    screenshot(page, "dashboard")

    # First-time consent card: nothing pre-ticked; ask for e-mail offers (double opt-in follows).
    consent = page.locator(".consent-card")
    for name in ("email", "sms", "personalised"):
        expect(consent.locator(f"input[name={name}]")).not_to_be_checked()
    consent.locator("input[name=email]").check()
    consent.locator("button[type=submit]").click()
    expect(page.locator(".messages")).to_be_visible()
    assert ConsentRecord.objects.get(member=member, purpose="email").confirmed_at is None

    page.goto(base + "/konto/aktivitaet/")
    expect(page.locator(".ledger-line").first).to_contain_text("BON-0004")
    expect(page.locator(".ledger-line__details").first).to_contain_text("Doppelte Punkte auf Kaffee")
    screenshot(page, "activity")

    # Redeem a reward: the confirmation step comes in place (htmx), then the voucher.
    coffee = Reward.objects.get(name_de="Gratis Kaffee")
    page.goto(base + "/konto/praemien/")
    screenshot(page, "rewards")
    page.locator(f"#reward-{coffee.pk} .reward__action a").click()
    confirm = page.locator(f"#redeem-{coffee.pk} form button[type=submit]")
    expect(confirm).to_be_visible()
    assert page.url.endswith("/konto/praemien/")  # same page: the fragment was swapped in
    confirm.click()
    page.wait_for_url(re.compile(r".*/konto/gutscheine/\d+/$"))
    voucher = Redemption.objects.get(member=member)
    expect(page.get_by_test_id("voucher-code")).to_contain_text(voucher.display_code)
    expect(page.locator(".voucher__qr svg")).to_be_visible()
    screenshot(page, "voucher")
    member.refresh_from_db()
    page.goto(base + "/konto/")
    expect(page.get_by_test_id("balance")).to_have_text(f"{member.points_balance:,}".replace(",", "."))

    page.goto(base + "/konto/profil/")
    screenshot(page, "profile")

    # Download my data.
    page.goto(base + "/konto/datenschutz/")
    screenshot(page, "privacy")
    with page.expect_download() as download_info:
        page.get_by_test_id("export").click()
    data = json.loads(open(download_info.value.path(), encoding="utf-8").read())  # noqa: SIM115
    assert data["profile"]["email"] == EMAIL
    assert [voucher["code"] for voucher in data["vouchers"]] == [voucher.display_code]
    assert len(data["purchases"]) == 4

    # English on every page.
    page.locator(".lang-switch button[value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert "/en/" in page.url

    # Delete the account: confirm the password once more, then confirm the deletion.
    page.goto(base + "/konto/datenschutz/loeschen/")
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/konto/datenschutz/loeschen/$"))
    screenshot(page, "delete")
    page.locator("input[name=confirm]").check()
    page.locator("form.stack button.button--danger").click()
    page.wait_for_url(lambda url: "/loeschen/" not in url)  # the form's own URL ends in "/" too
    member.refresh_from_db()
    assert member.status == Member.Status.ERASED and member.email == "" and member.user_id is None
    page.goto(base + "/konto/")
    assert "/accounts/login/" in page.url
