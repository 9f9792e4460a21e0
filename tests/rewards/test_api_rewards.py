"""The catalogue, redemptions and vouchers over real HTTP."""

from __future__ import annotations

import uuid
from decimal import Decimal

from partners.models import WebhookDelivery, WebhookEvent
from rewards.ledger import points_credit
from rewards.models import Redemption
from tests import factories


def _give(member, points: int) -> None:
    points_credit(member_id=member.pk, points=points, reason="test")


def test_the_catalogue_lists_rewards_cheapest_first(api, tiers):
    expensive = factories.RewardFactory(points_cost=900, name_en="Picnic basket")
    cheap = factories.RewardFactory(points_cost=100, name_en="Coffee")
    factories.RewardFactory(points_cost=50, active=False)
    factories.RewardFactory(points_cost=60, in_catalogue=False)
    body = api.get("/rewards/").json()
    assert [row["id"] for row in body["results"]] == [cheap.pk, expensive.pk]
    assert body["results"][0]["name"] == "Coffee" and body["results"][0]["available"] is None
    assert api.get(f"/rewards/{cheap.pk}/").json()["points_cost"] == 100


def test_the_catalogue_says_what_a_member_can_have_and_can_filter_to_it(api, partner, member, tiers):
    factories.relate(member, partner)
    _give(member, 300)
    affordable = factories.RewardFactory(points_cost=200)
    too_dear = factories.RewardFactory(points_cost=400)
    gold_only = factories.RewardFactory(points_cost=100, min_tier=tiers[2])
    sold_out = factories.RewardFactory(points_cost=100, stock=0)
    once = factories.RewardFactory(points_cost=10, limit_per_member=1)
    factories.RedemptionFactory(member=member, reward=once)
    results = api.get("/rewards/", params={"member_id": str(member.public_id)}).json()["results"]
    rows = {row["id"]: row for row in results}
    assert rows[affordable.pk]["available"] is True and rows[affordable.pk]["unavailable_reason"] is None
    assert "more points" in rows[too_dear.pk]["unavailable_reason"]
    assert "tier" in rows[gold_only.pk]["unavailable_reason"]
    assert rows[sold_out.pk]["available"] is False
    assert rows[once.pk]["available"] is False
    only = api.get("/rewards/", params={"member_id": str(member.public_id), "available_only": "true"}).json()["results"]
    assert [row["id"] for row in only] == [affordable.pk]
    assert api.get("/rewards/", params={"available_only": "true"}).status_code == 400
    assert api.get("/rewards/", params={"member_id": 10**12}).status_code == 400
    assert api.get("/rewards/", params={"member_id": str(uuid.uuid4())}).status_code == 404
    by_card = api.get("/rewards/", params={"card_number": member.card_number}).json()["results"]
    assert {row["id"]: row["available"] for row in by_card}[affordable.pk] is True


def test_redeem_takes_the_points_and_returns_the_voucher(api, partner, member):
    factories.WebhookSubscriptionFactory(partner=partner, events=[WebhookEvent.VOUCHER_ISSUED])
    _give(member, 500)
    reward = factories.RewardFactory(points_cost=200, name_en="10 EUR voucher", value=Decimal("10"))
    response = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk})
    assert response.status_code == 201, response.text
    body = response.json()
    redemption = Redemption.objects.get(pk=body["id"])
    assert body["code"] == redemption.display_code and body["status"] == "issued" and body["points"] == 200
    assert body["reward"]["name"] == "10 EUR voucher"
    member.refresh_from_db()
    assert member.points_balance == 300
    assert WebhookDelivery.objects.get().payload["voucher"]["code"] == body["code"]
    assert api.get(f"/redemptions/{body['id']}/").json()["code"] == body["code"]
    assert [row["id"] for row in api.get("/redemptions/").json()["results"]] == [body["id"]]


def test_redeeming_without_enough_points_is_422(api, member):
    reward = factories.RewardFactory(points_cost=200)
    response = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk})
    assert response.status_code == 422 and response.json()["code"] == "insufficient_points"
    assert not Redemption.objects.exists()
    missing = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": 10**9})
    assert missing.status_code == 400 and "reward_id" in missing.json()["errors"]


def test_cancel_gives_the_points_back_once(api, member):
    _give(member, 500)
    reward = factories.RewardFactory(points_cost=200)
    voucher = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk}).json()
    cancelled = api.post(f"/redemptions/{voucher['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    member.refresh_from_db()
    assert member.points_balance == 500
    again = api.post(f"/redemptions/{voucher['id']}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "voucher_not_cancellable"


def test_another_partner_cannot_see_or_cancel_a_voucher(api, other_api, member):
    _give(member, 500)
    reward = factories.RewardFactory(points_cost=200)
    voucher = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk}).json()
    assert other_api.get(f"/redemptions/{voucher['id']}/").status_code == 404
    assert other_api.post(f"/redemptions/{voucher['id']}/cancel/").status_code == 404
    assert other_api.get("/redemptions/").json()["results"] == []


def test_validate_then_consume_a_voucher_at_a_till(api, partner, member):
    factories.WebhookSubscriptionFactory(partner=partner, events=[WebhookEvent.VOUCHER_USED])
    _give(member, 500)
    reward = factories.RewardFactory(points_cost=200)
    voucher = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk}).json()
    typed = voucher["code"].lower().replace("-", " ")
    checked = api.post("/vouchers/validate/", {"code": typed, "store": "S1"})
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "issued" and checked.json()["member_id"] == str(member.public_id)
    used = api.post("/vouchers/consume/", {"code": voucher["code"], "store": "S1"})
    assert used.status_code == 200 and used.json()["status"] == "used" and used.json()["used_at"]
    redemption = Redemption.objects.get(pk=voucher["id"])
    assert redemption.used_by_partner == partner and redemption.used_at_store.code == "S1"
    assert WebhookDelivery.objects.get().payload["store"] == "S1"
    again = api.post("/vouchers/consume/", {"code": voucher["code"], "store": "S1"})
    assert again.status_code == 422 and again.json()["code"] == "voucher_invalid"


def test_a_voucher_from_another_partner_is_usable_here(api, other_api, member):
    # Vouchers belong to the member, and a member shops with every partner of the programme.
    _give(member, 500)
    voucher = api.post("/redemptions/", {"card_number": member.card_number,
                                         "reward_id": factories.RewardFactory(points_cost=100).pk}).json()
    assert other_api.post("/vouchers/consume/", {"code": voucher["code"], "store": "F1"}).status_code == 200


def test_an_unknown_code_is_invalid_and_a_foreign_store_is_refused(api, member):
    response = api.post("/vouchers/validate/", {"code": "0000-0000-0000-00"})
    assert response.status_code == 422 and response.json()["code"] == "voucher_invalid"
    foreign = api.post("/vouchers/validate/", {"code": "0000", "store": "F1"})
    assert foreign.status_code == 400 and "store" in foreign.json()["errors"]
