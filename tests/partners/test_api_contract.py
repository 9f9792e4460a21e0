"""The partner contract end to end over real HTTP (the live server), and list endpoints that run a
constant number of queries however much a page holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rewards.ledger import points_credit
from rewards.purchases import purchase_record
from tests import factories


def test_a_till_day_over_real_http(live_api, other_live_api, tiers):
    """Every endpoint once, the way a POS integration uses them, plus the other partner's view."""
    enrolled = live_api.post("/members/", {"email": "Kunde@Example.de", "first_name": "Karl", "language": "de"})
    assert enrolled.status_code == 201, enrolled.text
    member = enrolled.json()
    assert member["email"] == "Kunde@Example.de" and member["tier"]["rank"] == 0
    card = member["card_number"]

    found = live_api.get("/members/", params={"card_number": card}).json()["results"]
    assert [row["id"] for row in found] == [member["id"]]
    assert live_api.get(f"/members/{member['id']}/").json()["first_name"] == "Karl"
    updated = live_api.patch(f"/members/{member['id']}/", {"city": "Leipzig", "points_balance": 10**6})
    assert updated.status_code == 400 and "points_balance" in updated.json()["errors"]
    assert live_api.patch(f"/members/{member['id']}/", {"city": "Leipzig"}).json()["city"] == "Leipzig"

    bought = live_api.post("/purchases/", {"card_number": card, "order_reference": "BON-1", "amount": "250.00",
                                           "currency": "EUR", "store": "S1"})
    assert bought.status_code == 201, bought.text
    purchase = bought.json()
    assert purchase["points_earned"] == 250
    assert [row["id"] for row in live_api.get("/purchases/").json()["results"]] == [purchase["id"]]
    assert live_api.get(f"/purchases/{purchase['id']}/").json()["order_reference"] == "BON-1"
    returned = live_api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "GS-1", "amount": "50.00"})
    assert returned.status_code == 201 and returned.json()["points_reversed"] == 50

    balance = live_api.get(f"/members/{member['id']}/balance/").json()
    assert balance["available"] == 200
    entries = live_api.get(f"/members/{member['id']}/entries/").json()["results"]
    assert [entry["points"] for entry in entries] == [-50, 250]

    reward = factories.RewardFactory(points_cost=150, name_en="Coffee")
    assert reward.pk in [row["id"] for row in live_api.get("/rewards/").json()["results"]]
    assert live_api.get(f"/rewards/{reward.pk}/").json()["points_cost"] == 150
    voucher = live_api.post("/redemptions/", {"card_number": card, "reward_id": reward.pk}).json()
    assert voucher["status"] == "issued"
    assert [row["id"] for row in live_api.get("/redemptions/").json()["results"]] == [voucher["id"]]
    assert live_api.get(f"/redemptions/{voucher['id']}/").json()["code"] == voucher["code"]
    assert live_api.post("/vouchers/validate/", {"code": voucher["code"].lower()}).json()["status"] == "issued"
    assert live_api.post("/vouchers/consume/", {"code": voucher["code"], "store": "S1"}).json()["status"] == "used"
    used_again = live_api.post("/vouchers/consume/", {"code": voucher["code"], "store": "S1"})
    assert used_again.status_code in (404, 422) and used_again.json()["code"]
    second = live_api.post("/redemptions/", {"card_number": card, "reward_id": reward.pk})
    assert second.status_code == 422 and second.json()["code"] == "insufficient_points"

    hook = live_api.post("/webhooks/", {"url": "https://hooks.example.org/treuepunkt", "events": ["points.earned"]})
    assert hook.status_code == 201 and hook.json()["secret"]
    assert [row["id"] for row in live_api.get("/webhooks/").json()["results"]] == [hook.json()["id"]]
    assert live_api.get(f"/webhooks/{hook.json()['id']}/deliveries/").status_code == 200

    # The other partner: no purchases, vouchers or hooks of ours, and nothing to change them with;
    # our member only when present (the card at its till), never by the id alone.
    assert other_live_api.get(f"/members/{member['id']}/").status_code == 404
    assert other_live_api.get(f"/members/{member['id']}/balance/").status_code == 404
    assert other_live_api.get(f"/members/{member['id']}/balance/", params={"card_number": card}).status_code == 200
    assert other_live_api.get("/purchases/").json()["results"] == []
    assert other_live_api.get(f"/purchases/{purchase['id']}/").status_code == 404
    assert other_live_api.get(f"/redemptions/{voucher['id']}/").status_code == 404
    assert other_live_api.post(f"/redemptions/{voucher['id']}/cancel/", {}).status_code == 404
    assert other_live_api.get(f"/webhooks/{hook.json()['id']}/").status_code == 404
    assert live_api.delete(f"/webhooks/{hook.json()['id']}/").status_code == 204
    assert live_api.with_key(None).get("/rewards/").status_code == 401


def _queries(api, path: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return len(captured)


@pytest.mark.parametrize("path", ["/purchases/", "/redemptions/", "/rewards/", "/members/{member}/entries/"])
def test_lists_run_the_same_queries_for_one_row_or_many(api, partner, member, path):
    def add_rows(count: int, offset: int) -> None:
        for n in range(offset, offset + count):
            purchase_record(member_id=member.pk, partner=partner, order_reference=f"Q-{n}",
                            amount=Decimal("42.00"))
            reward = factories.RewardFactory(points_cost=1)
            api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk})

    points_credit(member_id=member.pk, points=1000, reason="query counting")
    url = path.format(member=member.public_id)
    params = {"member_id": str(member.public_id)} if path == "/rewards/" else None
    add_rows(1, 0)
    with_one = _queries(api, url, params)
    add_rows(6, 1)
    assert _queries(api, url, params) == with_one
