"""A referral in a real browser: Anna copies her link from "Freunde werben", her friend Ben opens it
in his own browser, signs up (the code is filled in), verifies his e-mail, makes a first purchase;
after the hold period both are paid and Anna sees Ben's referral as rewarded."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from members.models import Member
from members.services import member_link_or_enrol
from referrals import services
from referrals.models import Referral
from rewards.models import PointEntry
from rewards.purchases import purchase_record
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Sommerwiese-2026!"


@pytest.fixture
def anna(db):
    factories.tier_ladder()
    factories.ReferralProgramFactory()
    user = factories.UserFactory(email="anna@example.org", password=PASSWORD)
    EmailAddress.objects.create(user=user, email="anna@example.org", verified=True, primary=True)
    member = member_link_or_enrol(user=user, email="anna@example.org")
    Member.objects.filter(pk=member.pk).update(first_name="Anna", last_name="Berger")
    return member


def test_link_click_sign_up_first_purchase_reward(browser, live_server, anna, screenshot, settings):
    settings.LOYALTY_PUBLIC_URL = live_server.url  # mail links point to the public address
    base = live_server.url
    partner = factories.PartnerFactory(name="Testmarkt GmbH")

    # Anna signs in and takes her link from "Freunde werben".
    anna_page = browser.new_context(viewport={"width": 390, "height": 844}, locale="de-DE").new_page()
    anna_page.goto(base + "/accounts/login/")
    anna_page.fill("input[name=login]", "anna@example.org")
    anna_page.fill("input[name=password]", PASSWORD)
    anna_page.locator("form.stack button[type=submit]").click()
    anna_page.wait_for_url(re.compile(r".*/konto/$"))
    anna_page.get_by_role("link", name="Refer friends").click()
    anna_page.wait_for_url(re.compile(r".*/konto/freunde-werben/$"))
    link = anna_page.locator("#share-url").input_value()
    assert re.fullmatch(rf"{re.escape(base)}/r/[A-Z0-9]{{8}}", link)
    expect(anna_page.locator("main")).to_contain_text("You have not referred anyone yet")
    screenshot(anna_page, "referrals-empty")

    # Ben opens the link in his own browser and signs up; the code is already filled in.
    ben_page = browser.new_context(viewport={"width": 390, "height": 844}, locale="de-DE").new_page()
    ben_page.goto(link)
    ben_page.wait_for_url(re.compile(r".*/accounts/signup/$"))
    expect(ben_page.locator("main")).to_contain_text("You were invited by Anna.")
    expect(ben_page.locator("input[name=referral_code]")).to_have_value(link.rsplit("/", 1)[1])
    screenshot(ben_page, "referrals-signup")
    ben_page.fill("input[name=first_name]", "Ben")
    ben_page.fill("input[name=email]", "ben@example.org")
    ben_page.fill("input[name=password1]", PASSWORD)
    ben_page.fill("input[name=password2]", PASSWORD)
    ben_page.locator("form.stack button[type=submit]").click()
    ben_page.wait_for_url(re.compile(r".*/accounts/confirm-email/$"))
    confirm = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    ben_page.goto(confirm)
    ben_page.locator("main form button[type=submit]").click()
    ben_page.wait_for_url(re.compile(r".*/konto/$"))
    ben = Member.objects.get(email="ben@example.org")
    referral = Referral.objects.get(referee=ben)
    assert (referral.referrer_id, referral.channel, referral.status) == (anna.pk, "link", "pending")

    # Ben's first purchase at the till qualifies the referral; the hold period then passes.
    purchase_record(member_id=ben.pk, partner=partner, order_reference="BON-1", amount=Decimal("42.00"))
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED
    assert services.referrals_release_due(now=timezone.now() + timedelta(days=15)) == 1
    assert PointEntry.objects.get(member=ben, source="referral").points == 250

    # Anna sees Ben, shortened, as rewarded with her points (Ben has filled in his profile by now).
    Member.objects.filter(pk=ben.pk).update(first_name="Ben", last_name="Schulz")
    anna_page.reload()
    row = anna_page.locator("main table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Ben S.")
    expect(row).not_to_contain_text("Schulz")
    expect(row).to_contain_text("rewarded")
    expect(row).to_contain_text("+500")
    screenshot(anna_page, "referrals-rewarded")
    assert Member.objects.get(pk=anna.pk).points_balance == 500
