"""Partner API: a member's coupons (reached like the balance) and activating one at the till."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from offers.models import MemberOffer
from partners.models import Scope
from tests import factories
from tests.api_support import InProcessApi, purchase_body

pytestmark = pytest.mark.django_db


def test_a_related_partner_reads_the_members_coupons(api, partner, member):
    factories.relate(member, partner)
    store = factories.StoreFactory(partner=partner, code="BER")
    coupon = factories.MemberOfferFactory(member=member, offer=factories.OfferFactory(
        name_en="Store bonus", effect="bonus", value=200, store=store, min_spend="30.00"))
    factories.MemberOfferFactory(member=member, holdout=True)
    response = api.get(f"/members/{member.public_id}/coupons/")
    assert response.status_code == 200, response.text
    (row,) = response.json()
    assert row["id"] == coupon.pk and row["name"] == "Store bonus" and row["summary"] == "+200 bonus points"
    assert (row["store"], row["min_spend"], row["state"], row["uses"]) == ("BER", "30.00", "available", 0)


def test_an_unrelated_partner_needs_the_members_presence(other_api, member, partner):
    factories.relate(member, partner)
    factories.MemberOfferFactory(member=member)
    assert other_api.get(f"/members/{member.public_id}/coupons/").status_code == 404
    present = other_api.get(f"/members/{member.public_id}/coupons/", params={"card_number": member.card_number})
    assert present.status_code == 200 and len(present.json()) == 1


def test_the_till_activates_a_coupon_and_the_next_purchase_applies_it(api, partner, member):
    factories.relate(member, partner)
    coupon = factories.MemberOfferFactory(member=member, offer=factories.OfferFactory(
        name_en="Double points", value="2.00"))
    response = api.post(f"/members/{member.public_id}/coupons/{coupon.pk}/activate/")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "activated" and response.json()["activated_at"]
    purchase = api.post("/purchases/", purchase_body(member, "TILL-1", amount="15.00")).json()
    assert [(part["label"], part["points"]) for part in purchase["breakdown"]] == [
        ("1 Punkt pro Euro", 15), ("Double points", 15)]
    assert api.get(f"/members/{member.public_id}/coupons/").json()[0]["state"] == "used"


def test_the_till_cannot_activate_another_members_or_an_expired_coupon(api, partner, member):
    factories.relate(member, partner)
    other = factories.MemberOfferFactory()
    expired = factories.MemberOfferFactory(member=member, offer=factories.OfferFactory(
        valid_from=timezone.now() - timedelta(days=3), valid_until=timezone.now() - timedelta(seconds=1)))
    missing = api.post(f"/members/{member.public_id}/coupons/{other.pk}/activate/")
    assert missing.status_code == 404 and missing.json()["code"] == "coupon_not_found"
    late = api.post(f"/members/{member.public_id}/coupons/{expired.pk}/activate/")
    assert late.status_code == 409 and late.json()["code"] == "coupon_not_activatable"
    assert not MemberOffer.objects.filter(activated_at__isnull=False).exists()


def test_reading_needs_members_read_and_activating_purchases_write(api, partner, member):
    factories.relate(member, partner)
    coupon = factories.MemberOfferFactory(member=member)
    reader = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=[Scope.MEMBERS_READ]).raw_key,
                          partner=partner)
    assert isinstance(reader, InProcessApi)
    assert reader.get(f"/members/{member.public_id}/coupons/").status_code == 200
    assert reader.post(f"/members/{member.public_id}/coupons/{coupon.pk}/activate/").status_code == 403
    writer = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=[Scope.PURCHASES_WRITE]).raw_key,
                          partner=partner)
    assert writer.get(f"/members/{member.public_id}/coupons/").status_code == 403


def test_the_schema_documents_the_coupon_endpoints(client):
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "/api/v1/members/{id}/coupons/" in paths
    assert "/api/v1/members/{id}/coupons/{coupon_id}/activate/" in paths
