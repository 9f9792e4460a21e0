"""Presence can't be guessed: look-ups by card number, customer number or member code that find
nobody are counted per API key (settings.LOYALTY_API_PRESENCE_MISSES); beyond the limit that
key's presence look-ups answer 429 until the window ends, while look-ups by member id go on.
And webhooks are partner-wide: a key restricted to some stores may not manage them."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from core.ratelimit import current_window
from members import presence
from partners.models import PartnerAPIKey, WebhookSubscription
from tests import factories
from tests.api_support import purchase_body


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """The windows' time, frozen in the middle of a minute (the presence limit's window)."""
    fake = FakeClock(1_800_000_000.0 + 30)
    monkeypatch.setattr("core.ratelimit.time", fake)
    return fake


@pytest.fixture
def customer(api, member, settings, clock):
    """A member related to the test partner (bought at S1), and a limit of 3 misses a minute."""
    settings.LOYALTY_API_PRESENCE_MISSES = "3/minute"
    assert api.post("/purchases/", purchase_body(member, "BON-1", store="S1")).status_code == 201
    return member


def _miss(api):
    return api.get("/members/", params={"customer_number": "999999999"})


def _assert_rate_limited(response, seconds: int | None = None) -> dict:
    assert response.status_code == 429, response.text
    body = response.json()
    assert set(body) == {"code", "message", "errors"} and body["code"] == "presence_rate_limited"
    assert body["errors"] == {}
    assert int(response.headers["Retry-After"]) >= 1
    if seconds is not None:
        assert int(response.headers["Retry-After"]) == seconds
    return body


def test_presence_misses_beyond_the_limit_are_refused_until_the_window_ends(api, customer, clock):
    for _ in range(3):  # a mistyped number now and then is answered as before
        response = _miss(api)
        assert response.status_code == 200 and response.json()["results"] == []
    body = _assert_rate_limited(_miss(api), seconds=30)
    assert body["message"] == ("Too many look-ups by card number, customer number or member code found no member. "
                               "Please try again in 30 seconds.")
    # Now even the right number is refused: a guesser learns nothing from a hit.
    _assert_rate_limited(api.get(f"/members/{customer.public_id}/balance/",
                                 params={"card_number": customer.card_number}))
    _assert_rate_limited(api.get("/members/", params={"card_number": customer.card_number}))
    _assert_rate_limited(api.post("/purchases/", purchase_body(customer, "BON-2", store="S1")))
    # A related member by id works as before.
    assert api.get(f"/members/{customer.public_id}/balance/").status_code == 200
    assert api.get(f"/members/{customer.public_id}/").status_code == 200
    # The next window: presence works again.
    clock.now += 30
    balance = api.get(f"/members/{customer.public_id}/balance/", params={"card_number": customer.card_number})
    assert balance.status_code == 200


def test_misses_count_on_every_endpoint_that_takes_presence(api, customer):
    someone_else = "4000000000000000"
    assert api.get(f"/members/{customer.public_id}/balance/",
                   params={"card_number": someone_else}).status_code == 404
    assert api.post("/purchases/", {**purchase_body(customer, "BON-3", store="S1"),
                                    "card_number": someone_else}).status_code == 400
    assert api.get(f"/members/{customer.public_id}/", params={"member_code": "ABCDE23456"}).status_code == 404
    _assert_rate_limited(api.get("/rewards/", params={"customer_number": "123"}))


def test_hits_are_not_counted_and_cost_no_cache_entry(api, customer):
    for _ in range(10):
        assert api.get(f"/members/{customer.public_id}/balance/",
                       params={"card_number": customer.card_number}).status_code == 200
    key = PartnerAPIKey.objects.get(partner=api.partner)
    assert cache.get(current_window(60).key(f"loyalty:presence-misses:{key.pk}")) is None
    assert _miss(api).status_code == 200


def test_the_limit_is_per_key(api, other_api, customer):
    for _ in range(4):
        _miss(api)
    _assert_rate_limited(_miss(api))
    found = other_api.get("/members/", params={"card_number": customer.card_number}).json()["results"]
    assert [row["id"] for row in found] == [str(customer.public_id)]


def test_another_process_refuses_the_key_at_its_next_miss(api, customer):
    for _ in range(4):
        _miss(api)
    presence._refused_until.clear()  # a process that has not refused the key yet: the shared count decides
    _assert_rate_limited(_miss(api))


def test_no_limit_when_the_setting_is_empty(api, customer, settings):
    settings.LOYALTY_API_PRESENCE_MISSES = ""
    for _ in range(10):
        assert _miss(api).status_code == 200


# --- Webhooks are partner-wide -----------------------------------------------------------------

@pytest.fixture
def store_key_api(api, partner):
    store = factories.StoreFactory(partner=partner, code="S2")
    return api.with_key(factories.PartnerAPIKeyFactory(partner=partner, stores=[store]).raw_key, partner=partner)


def _assert_store_restricted(response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert set(body) == {"code", "message", "errors"} and body["code"] == "store_restricted_key"
    assert "webhooks" in body["message"]


def test_a_store_restricted_key_cannot_manage_the_partners_webhooks(api, store_key_api):
    hook = api.post("/webhooks/", {"url": "https://hooks.example.org/treuepunkt", "events": ["points.earned"]})
    assert hook.status_code == 201
    hook_id = hook.json()["id"]

    _assert_store_restricted(store_key_api.get("/webhooks/"))
    _assert_store_restricted(store_key_api.get(f"/webhooks/{hook_id}/"))
    _assert_store_restricted(store_key_api.get(f"/webhooks/{hook_id}/deliveries/"))
    _assert_store_restricted(store_key_api.post("/webhooks/", {"url": "https://hooks.example.org/s2",
                                                               "events": ["points.earned"]}))
    _assert_store_restricted(store_key_api.delete(f"/webhooks/{hook_id}/"))
    assert list(WebhookSubscription.objects.filter(partner=api.partner).values_list("pk", "active")) == [
        (hook_id, True)]
    # The partner-wide key still manages them.
    assert api.get("/webhooks/").json()["results"][0]["id"] == hook_id


def test_the_schema_says_webhooks_need_a_key_for_all_stores(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    for path, methods in schema["paths"].items():
        if path.startswith("/api/v1/webhooks/"):
            for operation in methods.values():
                assert "restricted to some stores is refused with 403" in operation["description"]
