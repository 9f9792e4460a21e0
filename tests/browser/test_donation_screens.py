"""Donation rewards in a real browser: a member donates points from the portal on a phone (the
cause on the card, the thank-you, the donations page, the dashboard total, no voucher), and
finance reads the totals per cause in the console at desktop width and exports them."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from rewards.demo import seed_catalogue_basics, seed_rewards_catalogue
from rewards.ledger import points_adjust
from rewards.models import Donation, Redemption, Reward
from rewards.vouchers import redemption_create
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE
from transfers.models import ExportLog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalogue(db):
    seed_catalogue_basics()
    seed_rewards_catalogue()  # with the demo's two donation rewards and their causes
    return Reward.objects.get(name_de="Einen Baum pflanzen")


def _portal_member():
    from allauth.account.models import EmailAddress

    from members.services import member_link_or_enrol

    user = factories.UserFactory(email="jonas@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    points_adjust(member_id=member.pk, points=800, reason="Willkommen", staff_user=None)
    return user, member


def test_a_member_donates_points_from_the_portal_on_a_phone(page, live_server, sign_in, catalogue, screenshot):
    user, member = _portal_member()
    sign_in(user)
    page.set_viewport_size(PHONE)
    base = live_server.url

    page.goto(base + "/konto/praemien/")
    card = page.locator(f"#reward-{catalogue.pk}")
    expect(card.locator(".reward__cause")).to_contain_text("Bäume für den Bergwald")
    expect(card.locator(".reward__cause")).to_contain_text("5,00 €")
    card.locator(".reward__action a").click()
    confirm = page.locator(f"#redeem-{catalogue.pk} form button[type=submit]")
    expect(confirm).to_have_text("Yes, donate")
    confirm.click()

    page.wait_for_url(re.compile(r".*/konto/spenden/$"))
    expect(page.locator("body")).to_contain_text("Thank you! Your donation of 5,00 € goes to Bäume für den Bergwald.")
    expect(page.locator(".donation-item")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing overflows the phone
    screenshot(page, "donations")
    donation = Donation.objects.get()
    assert (donation.member_id, donation.amount, donation.redemption.status) == (member.pk, Decimal("5.00"),
                                                                                 Redemption.Status.DONATED)

    page.goto(base + "/konto/gutscheine/")
    expect(page.locator("main")).not_to_contain_text("Einen Baum pflanzen")  # no voucher for a donation
    page.goto(base + "/konto/aktivitaet/")
    expect(page.locator(".ledger-line").first).to_contain_text("Donation to Bäume für den Bergwald")
    page.goto(base + "/konto/")
    expect(page.locator(".donation-card")).to_contain_text("You have donated 5,00 €.")
    member.refresh_from_db()
    assert member.points_balance == 300


def test_finance_reads_the_totals_per_cause_and_exports_them_at_desktop_width(page, live_server, sign_in, catalogue,
                                                                            screenshot):
    food_bank = Reward.objects.get(name_de="Spende an die Tafel")
    donors = [factories.enrolled_member() for _ in range(3)]
    for donor in donors:
        points_adjust(member_id=donor.pk, points=1000, reason="Test", staff_user=None)
        redemption_create(member_id=donor.pk, reward_id=catalogue.pk)
    old = redemption_create(member_id=donors[0].pk, reward_id=food_bank.pk)
    Donation.objects.filter(redemption=old).update(created_at=timezone.now() - timedelta(days=400))
    redemption_create(member_id=donors[1].pk, reward_id=food_bank.pk)
    sign_in(factories.staff_in("Finance"))
    page.set_viewport_size(DESKTOP)

    page.goto(live_server.url + reverse("admin:rewards_donationcause_changelist"))
    trees_row = page.locator("#result_list tbody tr", has_text="Bäume für den Bergwald")
    bank_row = page.locator("#result_list tbody tr", has_text="Tafel in Ihrer Stadt")
    expect(trees_row).to_contain_text("15,00")
    expect(bank_row).to_contain_text("4,00")
    screenshot(page, "console-donation-causes")

    page.goto(live_server.url + reverse("admin:rewards_donationcause_changelist") + "?period=this_year")
    expect(page.locator("#result_list tbody tr", has_text="Tafel in Ihrer Stadt")).to_contain_text("2,00")

    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("export_totals_csv")
    with page.expect_download() as download:
        page.locator("button[name=index], button[type=submit][name=index], .actions button").first.click()
    body = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "Bäume für den Bergwald;Bergwaldprojekt e. V.;3;1500;15,00" in body
    assert ExportLog.objects.get().kind == "donations"
