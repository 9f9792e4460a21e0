"""The card in the phone's wallet, in the browser: the buttons when the wallets are set up, the
notices when they are not, and the pass download's content type. (English source texts: the test
settings load no catalogue; the German is checked by tests/loyalty_site/test_translations.py.)"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from members.services import member_link_or_enrol
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE
from tests.members.wallet_support import configure_wallets

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _member():
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    return member_link_or_enrol(user=user, email="erika@example.org")


def test_phone_card_page_offers_both_wallets_and_the_pass_downloads(page, live_server, sign_in, settings,
                                                                     tmp_path, screenshot):
    configure_wallets(settings, tmp_path)
    member = _member()
    sign_in(member.user)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/konto/karte/")

    apple = page.get_by_role("link", name="Add to Apple Wallet")
    google = page.get_by_role("link", name="Add to Google Wallet")
    assert apple.is_visible() and google.is_visible()
    assert page.get_by_role("group", name="Save your card in your phone’s wallet").is_visible()
    assert page.get_by_text("not set up yet").count() == 0
    box = apple.bounding_box()
    assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]  # a thumb's target
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "wallet-card")

    with page.expect_download() as download_info:
        apple.click()
    download = download_info.value
    assert download.suggested_filename == f"treuepunkt-{member.customer_number}.pkpass"
    with zipfile.ZipFile(download.path()) as archive:
        assert json.loads(archive.read("pass.json"))["barcodes"][0]["message"] == member.card_number

    response = page.request.get(live_server.url + "/konto/karte/apple-wallet/")
    assert response.status == 200
    assert response.headers["content-type"] == "application/vnd.apple.pkpass"
    assert zipfile.is_zipfile(io.BytesIO(response.body()))
    google_link = page.request.get(live_server.url + "/konto/karte/google-wallet/", max_redirects=0)
    assert google_link.status == 302
    assert google_link.headers["location"].startswith("https://pay.google.com/gp/v/save/")


def test_desktop_card_page_says_the_wallets_are_not_set_up_and_the_download_is_a_404_page(page, live_server,
                                                                                          sign_in, screenshot):
    member = _member()
    sign_in(member.user)
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/konto/karte/")

    assert page.get_by_test_id("wallet-apple-missing").inner_text() == (
        "Apple Wallet is not set up yet. Until then, please show your card here in the portal.")
    assert page.get_by_test_id("wallet-google-missing").is_visible()
    assert page.get_by_role("link", name="Add to Apple Wallet").count() == 0
    screenshot(page, "wallet-card-not-set-up")

    response = page.goto(live_server.url + "/konto/karte/apple-wallet/")
    assert response.status == 404
    assert page.get_by_role("heading", name="Apple Wallet is not set up yet").is_visible()
    page.get_by_role("link", name="Show my card").click()
    page.wait_for_url("**/konto/karte/")


def test_desktop_dashboard_card_offers_the_wallet_buttons(page, live_server, sign_in, settings, tmp_path):
    configure_wallets(settings, tmp_path, google=False)
    member = _member()
    sign_in(member.user)
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/konto/")
    section = page.locator("section.card-section")
    assert section.get_by_role("link", name="Add to Apple Wallet").is_visible()
    assert section.get_by_role("link", name="Add to Google Wallet").count() == 0
    assert page.get_by_text("not set up yet").count() == 0  # the dashboard stays quiet
