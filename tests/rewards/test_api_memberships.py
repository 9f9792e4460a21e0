"""The partner API sells paid (VIP) memberships: POST /members/<id>/tier-memberships/."""

from __future__ import annotations

from decimal import Decimal

import pytest

from members.models import Member
from partners.models import Scope
from rewards.models import Purchase, TierMembership
from tests import factories


@pytest.fixture
def vip(tiers):
    return factories.vip_tier()


def url(member, **presence) -> str:
    query = "&".join(f"{name}={value}" for name, value in presence.items())
    return f"/members/{member.public_id}/tier-memberships/" + (f"?{query}" if query else "")


def test_a_till_sells_a_vip_membership_and_the_fee_is_a_purchase(api, partner, member, vip):
    response = api.post(url(member, card_number=member.card_number),
                        {"tier": vip.pk, "order_reference": "VIP-100", "store": "S1"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["tier"]["id"], body["tier"]["kind"], body["source"], body["status"]) == (
        vip.pk, "paid", "paid", "active")
    assert (body["fee_amount"], body["fee_currency"]) == ("99.00", "EUR")
    purchase = Purchase.objects.get(pk=body["purchase_id"])
    assert (purchase.partner, purchase.channel, purchase.store.code, purchase.points_earned) == (
        partner, "membership", "S1", 0)
    assert Member.objects.get(pk=member.pk).tier == vip
    # The fee shows among the partner's purchases.
    listed = api.get("/purchases/", params={"channel": "membership"}).json()["results"]
    assert [row["order_reference"] for row in listed] == ["VIP-100"]


def test_a_retry_with_the_same_key_replays_and_a_new_key_finds_the_sale(api, member, vip):
    body = {"tier": vip.pk, "order_reference": "VIP-RETRY"}
    first = api.post(url(member, card_number=member.card_number), body, idempotency_key="key-1")
    replay = api.post(url(member, card_number=member.card_number), body, idempotency_key="key-1")
    again = api.post(url(member, card_number=member.card_number), body, idempotency_key="key-2")
    assert (first.status_code, replay.status_code, again.status_code) == (201, 201, 200)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == replay.json()["id"] == again.json()["id"]
    assert TierMembership.objects.count() == 1 and Purchase.objects.count() == 1


def test_a_bad_body_is_400_with_field_errors_and_sells_nothing(api, member, vip, tiers):
    invitation = factories.invitation_tier()
    for body, field in [
        ({"order_reference": "X"}, "tier"),
        ({"tier": tiers[1].pk, "order_reference": "X"}, "tier"),  # a points tier is not for sale
        ({"tier": invitation.pk, "order_reference": "X"}, "tier"),  # nor is an invitation
        ({"tier": vip.pk}, "order_reference"),
        ({"tier": vip.pk, "order_reference": "X", "store": "NOPE"}, "store"),
        ({"tier": vip.pk, "order_reference": "X", "amount": "1.00"}, "amount"),  # the fee is the tier's
    ]:
        response = api.post(url(member, card_number=member.card_number), body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["errors"], (body, response.json())
    assert not TierMembership.objects.exists() and not Purchase.objects.exists()


def test_a_membership_fee_cannot_be_posted_as_an_ordinary_purchase(api, member):
    body = {"card_number": member.card_number, "order_reference": "FAKE", "amount": "99.00", "currency": "EUR",
            "channel": "membership"}
    response = api.post("/purchases/", body)
    assert response.status_code == 400 and "channel" in response.json()["errors"]


def test_selling_needs_the_purchases_write_scope(api, partner, member, vip):
    factories.relate(member, partner)
    read_only = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=[Scope.MEMBERS_READ]).raw_key,
                             partner=partner)
    response = read_only.post(url(member), {"tier": vip.pk, "order_reference": "VIP-RO"})
    assert response.status_code == 403
    assert read_only.get(url(member)).status_code == 200  # reading needs only members:read
    assert not TierMembership.objects.exists()


def test_a_member_the_partner_cannot_reach_is_404(other_api, member, vip):
    response = other_api.post(url(member), {"tier": vip.pk, "order_reference": "VIP-X"})
    assert response.status_code == 404
    assert not TierMembership.objects.exists()


def test_another_partners_sale_shows_without_its_purchase(api, other_api, member, vip):
    api.post(url(member, card_number=member.card_number), {"tier": vip.pk, "order_reference": "VIP-A"})
    listed = other_api.get(url(member, card_number=member.card_number))
    assert listed.status_code == 200, listed.text
    [row] = listed.json()
    assert (row["tier"]["id"], row["purchase_id"]) == (vip.pk, None)


def test_returning_the_fee_through_the_api_ends_the_membership(api, member, vip, tiers):
    sold = api.post(url(member, card_number=member.card_number), {"tier": vip.pk, "order_reference": "VIP-R"}).json()
    response = api.post(f"/purchases/{sold['purchase_id']}/returns/", {"reference": "CN-1", "amount": "99.00"})
    assert response.status_code == 201, response.text
    assert TierMembership.objects.get().status == "returned"
    assert Member.objects.get(pk=member.pk).tier == tiers[0]
    assert Purchase.objects.get().returned_amount == Decimal("99.00")


def test_a_nul_character_in_the_presence_is_a_field_error_not_a_server_error(api, member, vip):
    response = api.post(f"/members/{member.public_id}/tier-memberships/?customer_number=K%00",
                        {"tier": vip.pk, "order_reference": "VIP-NUL"})
    assert response.status_code == 400 and "customer_number" in response.json()["errors"]
