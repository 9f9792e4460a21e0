"""The portal as an app in a real browser: the card page opens offline with the last balance and
its time (phone width), the stored card never outlives the account (sign-out, another account),
and the push switch on the profile page (desktop width)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from members.models import ConsentRecord, PushSubscription
from members.push import vapid_keys_generate
from members.services import member_link_or_enrol
from rewards.ledger import points_credit
from tests import factories
from tests.browser.conftest import DESKTOP

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARD_CACHE = "treuepunkt-card"


def portal_member(email: str, points: int = 0):
    member = member_link_or_enrol(user=factories.UserFactory(email=email), email=email)
    if points:
        points_credit(member_id=member.pk, points=points, reason="Willkommen")
    member.refresh_from_db()
    return member


def card_stored(page, path: str = "/konto/karte/") -> bool:
    return page.evaluate("""async ([name, path]) => {
        const cache = await caches.open(name);
        return Boolean(await cache.match(path));
    }""", [CARD_CACHE, path])


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def open_card_online(page, base: str, path: str = "/konto/karte/") -> None:
    """First visit installs the worker; the next one goes through it and is stored."""
    page.goto(base + path)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    wait_until(lambda: page.evaluate("Boolean(navigator.serviceWorker.controller)"))
    page.reload()
    wait_until(lambda: card_stored(page, path))


def test_the_card_opens_offline_with_the_last_known_balance_at_phone_width(page, live_server, tiers, sign_in,
                                                                           screenshot):
    anna = portal_member("anna@example.org", points=1234)
    sign_in(anna.user)
    open_card_online(page, live_server.url)
    expect(page.get_by_test_id("offline-notice")).to_be_hidden()
    as_of = page.get_by_test_id("card-balance").inner_text()

    points_credit(member_id=anna.pk, points=100, reason="Nach dem letzten Besuch")  # the server moves on
    page.context.set_offline(True)
    page.reload()

    notice = page.get_by_test_id("offline-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(re.compile(r"Offline – as of \d\d\.\d\d\.\d{4}"))
    expect(page.get_by_test_id("card-balance")).to_have_text(as_of)  # the last known balance, not 1,334
    expect(page.get_by_test_id("card-balance")).to_contain_text("1.234 points")
    expect(page.locator(".loyalty-card__barcode svg")).to_be_visible()
    expect(page.locator(".loyalty-card__number")).to_contain_text(anna.card_number[:4])
    expect(page.locator("[data-online-only]")).to_be_hidden()  # a member code needs the server
    assert page.evaluate("window.innerWidth") == 390
    screenshot(page, "card-offline")

    page.goto(live_server.url + "/konto/aktivitaet/")  # a page the worker has no copy of
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    page.context.set_offline(False)


def test_signing_out_deletes_the_stored_card(page, live_server, tiers, sign_in):
    anna = portal_member("anna@example.org", points=50)
    sign_in(anna.user)
    open_card_online(page, live_server.url)
    page.get_by_role("button", name="Sign out").click()
    # The card page's own URL ends in "/" too: wait until the browser has left it.
    page.wait_for_url(lambda url: "/konto/karte/" not in url)
    page.wait_for_load_state()
    wait_until(lambda: not card_stored(page))

    page.context.set_offline(True)
    page.goto(live_server.url + "/konto/karte/")
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(anna.card_number)
    page.context.set_offline(False)


def test_another_account_on_the_same_device_never_sees_the_stored_card(page, live_server, tiers, sign_in):
    anna = portal_member("anna@example.org", points=50)
    sign_in(anna.user)
    open_card_online(page, live_server.url)
    # Anna's session ends without signing out; Bernd signs in on the same browser.
    page.context.clear_cookies()
    bernd = portal_member("bernd@example.org")
    sign_in(bernd.user)
    page.goto(live_server.url + "/konto/")
    wait_until(lambda: not card_stored(page))

    page.context.set_offline(True)
    page.goto(live_server.url + "/konto/karte/")
    expect(page.locator("body")).not_to_contain_text(anna.card_number)
    page.context.set_offline(False)


def test_the_english_card_is_stored_and_served_offline_too(page, live_server, tiers, sign_in):
    anna = portal_member("anna@example.org", points=7)
    sign_in(anna.user)
    open_card_online(page, live_server.url, "/en/konto/karte/")
    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_test_id("offline-notice")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.context.set_offline(False)


# --- The push switch (desktop) ------------------------------------------------------------------

# Headless Chromium has no push service to subscribe at (Debian's build carries no Firebase
# credentials, PushManager.subscribe fails with "push service not available"): the browser's
# side of the push service is outside the machine, so the page gets a stand-in PushManager that
# answers like a real subscription. Everything else (permission prompt answered by the
# browser's permission setting, our script, the CSRF header, the view, the consent) is real.
FAKE_PUSH_MANAGER = """
(() => {
  const keys = {p256dh: "%s", auth: "MDEyMzQ1Njc4OWFiY2RlZg"};
  let current = null;
  const make = () => ({
    endpoint: "https://push.example.net/send/browser-1",
    toJSON() { return {endpoint: this.endpoint, expirationTime: null, keys}; },
    unsubscribe() { current = null; return Promise.resolve(true); },
  });
  PushManager.prototype.subscribe = function (options) {
    window.__pushOptions = options;
    current = make();
    return Promise.resolve(current);
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
})();
"""


def _device_public_key() -> str:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    raw = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def vapid(settings, fake_dns):
    for name, value in vapid_keys_generate().items():
        setattr(settings, name, value)
    settings.LOYALTY_WEBPUSH_VAPID_SUBJECT = "mailto:technik@treuepunkt.example"
    fake_dns["push.example.net"] = ["93.184.215.14"]
    return settings


def test_the_push_switch_subscribes_this_device_and_records_the_consent_at_desktop_width(
        page, live_server, tiers, sign_in, vapid, screenshot):
    anna = portal_member("anna@example.org")
    page.set_viewport_size(DESKTOP)
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.add_init_script(FAKE_PUSH_MANAGER % _device_public_key())
    sign_in(anna.user)
    page.goto(live_server.url + "/konto/profil/")
    switch = page.get_by_role("switch", name=re.compile("Send offers and news as notifications"))
    expect(switch).to_be_enabled()
    expect(switch).not_to_be_checked()
    # Chromium offers to install only an installable app (a valid manifest, a worker): our button shows.
    expect(page.locator("[data-install-button]")).to_be_visible()

    switch.check()

    expect(page.get_by_test_id("push-status")).to_have_text("Notifications are switched on for this device.")
    device = PushSubscription.objects.get(member=anna)
    assert device.endpoint == "https://push.example.net/send/browser-1"
    assert anna.consents.get(purpose=ConsentRecord.Purpose.PUSH).granted
    # The browser was asked with our public key.
    sent_key = page.evaluate("btoa(String.fromCharCode(...new Uint8Array(window.__pushOptions.applicationServerKey)))")
    assert sent_key.replace("+", "-").replace("/", "_").rstrip("=") == vapid.LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY
    screenshot(page, "profile-push-on")

    switch.uncheck()

    expect(page.get_by_test_id("push-status")).to_have_text("Notifications are switched off for this device.")
    assert not PushSubscription.objects.filter(member=anna).exists()
    latest = anna.consents.filter(purpose=ConsentRecord.Purpose.PUSH).order_by("-created_at", "-id").first()
    assert latest.granted is False


def test_a_refused_notification_permission_leaves_push_off(page, live_server, tiers, sign_in, vapid):
    anna = portal_member("anna@example.org")
    page.set_viewport_size(DESKTOP)
    page.add_init_script(FAKE_PUSH_MANAGER % _device_public_key())
    page.add_init_script("Notification.requestPermission = () => Promise.resolve('denied');")
    sign_in(anna.user)
    page.goto(live_server.url + "/konto/profil/")
    switch = page.get_by_role("switch", name=re.compile("Send offers and news as notifications"))
    expect(switch).to_be_enabled()
    switch.click()
    expect(page.get_by_test_id("push-status")).to_contain_text("does not allow notifications")
    expect(switch).not_to_be_checked()
    assert not PushSubscription.objects.exists() and not anna.consents.exists()
