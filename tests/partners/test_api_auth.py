"""Partner API keys over real HTTP: hashed, shown once, revocable, scoped, store-restricted,
rate-limited; one error shape in the caller's language; one partner never sees another's data."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from partners.models import Partner, PartnerAPIKey, Scope
from partners.services import partner_key_create, partner_key_revoke
from rewards.models import PointEntry
from tests import factories
from tests.api_support import purchase_body


@pytest.fixture
def member(tiers, partner):
    """A member the test partner knows (enrolled there): reachable by their API id."""
    return factories.relate(factories.enrolled_member(), partner)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == code
    assert body["message"]
    return body


def test_key_is_stored_only_as_a_fast_sha512_hash(partner):
    key, raw = partner_key_create(partner=partner, scopes=["members:read"], name="Kasse 1")
    stored = PartnerAPIKey.objects.get(pk=key.pk)
    assert stored.hashed_key.startswith("sha512$$")
    assert raw not in (stored.hashed_key, stored.id, stored.prefix)
    assert raw.split(".")[1] not in stored.id
    assert stored.is_valid(raw)
    assert not stored.is_valid(raw + "x")


def test_unknown_scopes_are_refused(partner):
    with pytest.raises(ValueError, match="members:delete"):
        partner_key_create(partner=partner, scopes=["members:delete"], name="x")


def test_a_key_cannot_be_restricted_to_another_partners_store(partner):
    foreign = factories.StoreFactory()
    with pytest.raises(ValueError):
        partner_key_create(partner=partner, scopes=["purchases:write"], name="x", stores=[foreign])


def test_request_without_key_is_401_with_the_error_shape(api, member):
    response = api.with_key(None).get(f"/members/{member.public_id}/")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize("bad_key", ["garbage", "abcdefgh.wrong-secret", "nodot"])
def test_a_wrong_key_is_401(api, member, bad_key):
    assert_error(api.with_key(bad_key).get(f"/members/{member.public_id}/"), 401, "authentication_failed")


def test_a_revoked_key_is_401(api, partner, member):
    key = factories.PartnerAPIKeyFactory(partner=partner)
    client = api.with_key(key.raw_key)
    assert client.get(f"/members/{member.public_id}/").status_code == 200
    assert partner_key_revoke(key_id=key.pk) == 1
    assert_error(client.get(f"/members/{member.public_id}/"), 401, "authentication_failed")


def test_an_expired_key_and_an_inactive_partner_are_401(api, partner, member):
    expired = factories.PartnerAPIKeyFactory(partner=partner, expiry_date=timezone.now() - timedelta(minutes=1))
    assert_error(api.with_key(expired.raw_key).get(f"/members/{member.public_id}/"), 401, "authentication_failed")
    Partner.objects.filter(pk=partner.pk).update(active=False)
    assert_error(api.get(f"/members/{member.public_id}/"), 401, "authentication_failed")


def test_a_key_does_only_what_its_scopes_allow(api, partner, member):
    reader = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=[Scope.MEMBERS_READ]).raw_key)
    assert reader.get(f"/members/{member.public_id}/").status_code == 200
    assert reader.get(f"/members/{member.public_id}/balance/").status_code == 200
    body = assert_error(reader.post("/purchases/", purchase_body(member, "R-1")), 403, "permission_denied")
    assert "purchases:write" in body["message"]
    assert_error(reader.patch(f"/members/{member.public_id}/", {"city": "Bonn"}), 403, "permission_denied")
    assert_error(reader.get("/rewards/"), 403, "permission_denied")
    assert_error(reader.post("/vouchers/validate/", {"code": "X"}), 403, "permission_denied")
    assert_error(reader.get("/webhooks/"), 403, "permission_denied")
    assert not PointEntry.objects.exists()


def test_a_partner_never_sees_another_partners_purchases(api, other_api, member):
    created = api.post("/purchases/", purchase_body(member, "MINE-1")).json()
    assert other_api.get(f"/purchases/{created['id']}/").status_code == 404
    assert other_api.get("/purchases/").json()["results"] == []
    assert_error(other_api.post(f"/purchases/{created['id']}/returns/", {"reference": "R", "amount": "1.00"}),
                 404, "not_found")
    # The member is shared by the programme (the other partner reaches them when they are
    # present: the card); the other partner's ledger view hides the reference.
    entries = other_api.get(f"/members/{member.public_id}/entries/",
                            params={"card_number": member.card_number}).json()["results"]
    assert [entry["purchase_id"] for entry in entries] == [None]
    assert "MINE-1" not in entries[0]["reason"]
    own = api.get(f"/members/{member.public_id}/entries/").json()["results"]
    assert own[0]["purchase_id"] == created["id"] and "MINE-1" in own[0]["reason"]


def test_a_store_restricted_key_acts_only_for_its_stores(api, partner, member):
    mine = factories.StoreFactory(partner=partner, code="S2")
    key = factories.PartnerAPIKeyFactory(partner=partner, stores=[mine])
    till = api.with_key(key.raw_key)
    body = assert_error(till.post("/purchases/", purchase_body(member, "T-1")), 400, "invalid")
    assert "store" in body["errors"]
    assert_error(till.post("/purchases/", purchase_body(member, "T-2", store="S1")), 400, "invalid")
    assert till.post("/purchases/", purchase_body(member, "T-3", store="S2")).status_code == 201
    elsewhere = api.post("/purchases/", purchase_body(member, "T-4", store="S1")).json()
    assert [row["order_reference"] for row in till.get("/purchases/").json()["results"]] == ["T-3"]
    assert till.get(f"/purchases/{elsewhere['id']}/").status_code == 404


def test_too_many_requests_get_429_with_retry_after(api, member, settings):
    settings.LOYALTY_API_RATE = "3/minute"
    statuses = [api.get(f"/members/{member.public_id}/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get(f"/members/{member.public_id}/")
    assert_error(response, 429, "throttled")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # Per key: another key of the same partner is not affected.
    other = api.with_key(factories.PartnerAPIKeyFactory(partner=api.partner).raw_key)
    assert other.get(f"/members/{member.public_id}/").status_code == 200


def test_error_messages_follow_accept_language(api, member):
    anonymous = api.with_key(None)
    english = anonymous.get(f"/members/{member.public_id}/", headers={"Accept-Language": "en"})
    german = anonymous.get(f"/members/{member.public_id}/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert english.json()["message"] == "Authentication credentials were not provided."
    assert german.json()["message"] != english.json()["message"]
    assert german.headers["Content-Language"] == "de"
    assert english.headers["Content-Language"] == "en"


def test_unknown_api_urls_answer_in_the_error_shape(api):
    assert_error(api.get("/nothing-here/"), 404, "not_found")


def test_create_partner_key_creates_the_partner_and_prints_a_working_key_once(api, member):
    out, err = StringIO(), StringIO()
    call_command("create_partner_key", "Neuer Laden GmbH", "--scopes", "members:read,purchases:write",
                 stdout=out, stderr=err)
    raw = out.getvalue().strip()
    partner = Partner.objects.get(name="Neuer Laden GmbH")
    key = PartnerAPIKey.objects.get(partner=partner)
    assert key.scopes == ["members:read", "purchases:write"]
    assert raw.startswith(key.prefix + ".") and raw not in key.hashed_key
    assert api.with_key(raw).get("/members/", params={"card_number": member.card_number}).status_code == 200
    # Again for the same partner: a second key, the partner is not duplicated.
    call_command("create_partner_key", "Neuer Laden GmbH", "--scopes", "rewards:read", stdout=StringIO(),
                 stderr=StringIO())
    assert Partner.objects.filter(name="Neuer Laden GmbH").count() == 1
    assert PartnerAPIKey.objects.filter(partner=partner).count() == 2


def test_create_partner_key_refuses_unknown_scopes(db):
    with pytest.raises(CommandError, match="Unknown scopes"):
        call_command("create_partner_key", "X GmbH", "--scopes", "everything", stdout=StringIO(), stderr=StringIO())


def test_seed_demo_prints_a_working_partner_key_and_a_rerun_replaces_it(db):
    from io import StringIO

    from django.core.management import call_command

    from tests.api_support import InProcessApi

    def seeded_key() -> str:
        out = StringIO()
        call_command("seed_demo", members=2, stdout=out)
        return next(line.split(":", 1)[1].strip() for line in out.getvalue().splitlines() if "Partner API key" in line)

    first = seeded_key()
    assert InProcessApi(first).get("/rewards/").status_code == 200
    second = seeded_key()
    assert InProcessApi(second).get("/rewards/").status_code == 200
    assert InProcessApi(first).get("/rewards/").status_code == 401  # hashed keys can't be shown twice: replaced


def test_a_known_key_costs_no_query_and_every_change_counts_on_the_next_request(api, partner, member):
    """Processes keep the keys they have seen; a change anywhere must still count at once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    key = factories.PartnerAPIKeyFactory(partner=partner)
    client = api.with_key(key.raw_key)
    assert client.get(f"/members/{member.public_id}/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/members/{member.public_id}/").status_code == 200
    assert not [query for query in queries.captured_queries if "partnerapikey" in query["sql"]]

    mine = factories.StoreFactory(partner=partner, code="S2")
    key.stores.set([mine])  # restricted to a store: a purchase must now name it
    assert_error(client.post("/purchases/", purchase_body(member, "K-1")), 400, "invalid")
    key.stores.clear()
    assert client.post("/purchases/", purchase_body(member, "K-2")).status_code == 201

    key.expiry_date = timezone.now() - timedelta(seconds=1)
    key.save()
    assert_error(client.get(f"/members/{member.public_id}/"), 401, "authentication_failed")
    key.expiry_date = None
    key.save()
    assert client.get(f"/members/{member.public_id}/").status_code == 200

    partner.active = False
    partner.save()
    assert_error(client.get(f"/members/{member.public_id}/"), 401, "authentication_failed")
    partner.active = True
    partner.save()
    assert client.get(f"/members/{member.public_id}/").status_code == 200
    assert partner_key_revoke(key_id=key.pk) == 1
    assert_error(client.get(f"/members/{member.public_id}/"), 401, "authentication_failed")
