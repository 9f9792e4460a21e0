"""The portal as an installable web app: the manifest, the service worker's script and scope,
the offline page, the card page the worker keeps (balance with its time, keyed to the account),
and the CSP that lets the worker and the manifest load."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from members.pwa import portal_account_key
from members.services import member_link_or_enrol
from rewards.ledger import points_credit
from tests import factories


@pytest.fixture
def anna(tiers):
    user = factories.UserFactory(email="anna@example.org")
    member = member_link_or_enrol(user=user, email="anna@example.org")
    points_credit(member_id=member.pk, points=1234, reason="Willkommen")
    member.refresh_from_db()
    return member


def test_manifest_is_a_web_app_manifest_in_the_page_language(db):
    german = json.loads((response := _get("/manifest.webmanifest")).content)
    assert response["Content-Type"].startswith("application/manifest+json")
    assert german["lang"] == "de" and german["start_url"] == "/konto/" and german["display"] == "standalone"
    assert german["scope"] == "/" and german["theme_color"] and german["background_color"] and german["short_name"]
    english = json.loads(_get("/en/manifest.webmanifest").content)
    assert english["lang"] == "en" and english["start_url"] == "/en/konto/"
    assert english["name"] != german["name"] or english["lang"] != german["lang"]


def test_manifest_icons_come_in_several_sizes_from_our_static_files(db):
    icons = json.loads(_get("/manifest.webmanifest").content)["icons"]
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in icons}
    assert any(icon["purpose"] == "maskable" for icon in icons)
    for icon in icons:
        assert icon["src"].startswith("/static/portal/icons/")
        assert finders.find(icon["src"].removeprefix("/static/")), icon["src"]


def test_every_portal_page_links_the_manifest_and_the_app_script(client, db):
    html = client.get("/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    assert "/static/portal/pwa.js" in html and 'name="theme-color"' in html
    assert '<link rel="manifest" href="/en/manifest.webmanifest">' in client.get("/en/").content.decode()


def test_service_worker_is_served_from_the_root_as_javascript_with_a_site_wide_scope(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response["Cache-Control"]
    script = response.content.decode()
    # The card in both languages, the shell with the offline pages, no template left unrendered.
    assert '"/en/konto/karte/"' in script and '"/konto/karte/"' in script
    assert '"/offline/"' in script and '"/en/offline/"' in script and "/static/portal/portal.css" in script
    assert "{{" not in script and "{%" not in script and "&quot;" not in script


def test_the_content_security_policy_allows_the_worker_and_the_manifest_from_this_site_only(client, db):
    # worker-src and manifest-src fall back to default-src 'self' (CSP 3): nothing widens them.
    for path in ("/", "/konto/karte/", "/sw.js", "/manifest.webmanifest"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "unsafe" not in policy
        assert "worker-src" not in policy and "manifest-src" not in policy and "script-src" not in policy


def test_the_offline_page_holds_nothing_of_the_member_signed_in(client, anna):
    client.force_login(anna.user)
    html = client.get(reverse("portal:offline")).content.decode()
    assert anna.card_number not in html and "anna@" not in html and "1234" not in html
    assert reverse("portal:card") in html


def test_card_page_shows_the_balance_with_its_time_and_a_hidden_offline_notice(client, anna):
    client.force_login(anna.user)
    response = client.get(reverse("portal:card"))
    html = response.content.decode()
    assert 'data-testid="card-balance"' in html and "1.234 points" in html and "as of" in html
    assert "data-offline-notice hidden" in html  # the worker shows it on its stored copy only
    assert "data-online-only" in html  # the member code needs the network: hidden offline
    assert response["X-Portal-Account"] == portal_account_key(anna.user.pk)
    assert f'data-portal-account="{portal_account_key(anna.user.pk)}"' in html


def test_the_cache_key_differs_between_accounts_and_is_empty_when_nobody_is_signed_in(client, anna):
    bernd = member_link_or_enrol(user=factories.UserFactory(email="bernd@example.org"), email="bernd@example.org")
    assert portal_account_key(anna.user.pk) != portal_account_key(bernd.user.pk)
    assert re.fullmatch(r"[0-9a-f]{24}", portal_account_key(anna.user.pk))  # a keyed hash, not the id
    assert 'data-portal-account=""' in client.get(reverse("portal:terms")).content.decode()


def _get(path: str):
    from django.test import Client

    return Client().get(path)
