"""Purchases and returns over real HTTP, the validation of absurd input, and webhooks they raise."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import Member
from partners.models import WebhookDelivery, WebhookEvent
from rewards.models import PointEntry, Purchase, PurchaseReturn
from tests import factories
from tests.api_support import purchase_body


def test_post_a_purchase_earns_points_with_a_breakdown(api, member, tiers):
    factories.EarningRuleFactory(name_de="Doppelte Punkte Schuhe", name_en="Double points on shoes",
                                 effect="multiplier", value=2, category="shoes", priority=50)
    response = api.post("/purchases/", purchase_body(member, "ORD-1", amount="60.00", store="S1", lines=[
        {"sku": "A-1", "category": "shoes", "quantity": 1, "amount": "40.00"},
        {"sku": "B-2", "category": "food", "quantity": 2, "amount": "20.00"},
    ]))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["points_earned"] == 100 and body["store"] == "S1" and body["member_id"] == str(member.public_id)
    assert [(part["label"], part["points"]) for part in body["breakdown"]] == [
        ("1 Punkt pro Euro", 60), ("Double points on shoes", 40)]
    assert [(line["sku"], line["points"]) for line in body["lines"]] == [("A-1", 80), ("B-2", 20)]
    member.refresh_from_db()
    assert member.points_balance == 100


@pytest.mark.parametrize("identify", ["member_id", "card_number", "customer_number"])
def test_the_member_is_named_by_id_card_or_customer_number(api, partner, member, identify):
    factories.relate(member, partner)  # an id alone reaches only a member the partner knows
    value = {"member_id": str(member.public_id), "card_number": member.card_number,
             "customer_number": member.customer_number}[identify]
    body = {identify: value, "order_reference": f"ID-{identify}", "amount": "10.00", "currency": "CHF"}
    response = api.post("/purchases/", body)
    assert response.status_code == 201, response.text
    assert response.json()["member_id"] == str(member.public_id) and response.json()["currency"] == "CHF"


def test_the_same_order_reference_with_a_new_key_earns_nothing_again(api, member):
    first = api.post("/purchases/", purchase_body(member, "DUP-1"))
    again = api.post("/purchases/", purchase_body(member, "DUP-1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert PointEntry.objects.filter(member=member).count() == 1


def test_a_return_reverses_points_by_amount_and_by_lines(api, member):
    purchase = api.post("/purchases/", purchase_body(member, "RET-1", amount="100.00", lines=[
        {"sku": "A", "amount": "60.00"}, {"sku": "B", "amount": "40.00"}])).json()
    by_amount = api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "CN-1", "amount": "50.00"})
    assert by_amount.status_code == 201, by_amount.text
    assert by_amount.json()["points_reversed"] == 50 and by_amount.json()["shortfall_points"] == 0
    line_b = purchase["lines"][1]["id"]
    by_line = api.post(f"/purchases/{purchase['id']}/returns/",
                       {"reference": "CN-2", "lines": [{"line_id": line_b, "amount": "20.00"}]})
    assert by_line.status_code == 201, by_line.text
    assert by_line.json()["points_reversed"] == 20
    member.refresh_from_db()
    assert member.points_balance == 30
    detail = api.get(f"/purchases/{purchase['id']}/").json()
    assert detail["points_reversed"] == 70 and Decimal(detail["returned_amount"]) == Decimal("70.00")


def test_a_return_with_a_known_reference_answers_200_and_reverses_nothing_more(api, member):
    purchase = api.post("/purchases/", purchase_body(member, "RET-2")).json()
    first = api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "CN-1", "amount": "2.00"})
    again = api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "CN-1", "amount": "2.00"})
    other = api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "CN-1", "amount": "3.00"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert PurchaseReturn.objects.count() == 1


def test_returning_more_than_was_bought_is_refused(api, member):
    purchase = api.post("/purchases/", purchase_body(member, "RET-3", amount="10.00")).json()
    response = api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "CN-9", "amount": "10.01"})
    assert response.status_code == 422 and response.json()["code"] == "invalid_return"
    both = api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "CN-9"})
    assert both.status_code == 400 and "amount" in both.json()["errors"]


def test_list_purchases_with_filters_and_cursor_pages(api, member, partner):
    other_member = factories.enrolled_member()
    for n in range(3):
        api.post("/purchases/", purchase_body(member, f"P-{n}", store="S1"))
    api.post("/purchases/", purchase_body(other_member, "Q-1", channel="online"))
    first = api.get("/purchases/", params={"page_size": 2}).json()
    assert [row["order_reference"] for row in first["results"]] == ["Q-1", "P-2"]
    assert [row["order_reference"] for row in api.get(first["next"]).json()["results"]] == ["P-1", "P-0"]
    assert len(api.get("/purchases/", params={"member": str(member.public_id)}).json()["results"]) == 3
    assert [row["order_reference"] for row in api.get("/purchases/", params={"channel": "online"}).json()[
        "results"]] == ["Q-1"]
    assert len(api.get("/purchases/", params={"store": "S1"}).json()["results"]) == 3
    assert [row["order_reference"] for row in api.get("/purchases/", params={"order_reference": "P-1"}).json()[
        "results"]] == ["P-1"]


def test_points_and_a_tier_change_are_announced_to_webhooks(api, partner, member):
    factories.WebhookSubscriptionFactory(partner=partner, events=[WebhookEvent.POINTS_EARNED,
                                                                  WebhookEvent.TIER_CHANGED])
    api.post("/purchases/", purchase_body(member, "HOOK-1", amount="10.00"))
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["points.earned"]
    api.post("/purchases/", purchase_body(member, "HOOK-2", amount="600.00"))  # 610 points: Silver
    events = list(WebhookDelivery.objects.order_by("id").values_list("event", "payload"))
    assert [event for event, _ in events] == ["points.earned", "points.earned", "tier.changed"]
    assert events[2][1]["tier"]["name"] == "Silver" and events[2][1]["member_id"] == str(member.public_id)


# --- Absurd input: refused with a field error, nothing recorded ----------------------------------

def _iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": "-5.00"}, "amount"),
    ({"amount": "0"}, "amount"),
    ({"amount": "1000000.01"}, "amount"),
    ({"amount": "12.345"}, "amount"),
    ({"amount": "NaN"}, "amount"),
    ({"currency": "USD"}, "currency"),
    ({"currency": None}, "currency"),
    ({"channel": "fax"}, "channel"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"occurred_at": "__year_ago__"}, "occurred_at"),
    ({"occurred_at": "__tomorrow_plus__"}, "occurred_at"),
    ({"order_reference": ""}, "order_reference"),
    ({"order_reference": "x" * 81}, "order_reference"),
    ({"store": "NOPE"}, "store"),
    ({"card_number": "0000000000000000"}, "card_number"),
    ({"member_id": 5}, "member_id"),
    ({"lines": [{"amount": "40.00"}]}, "lines"),
    ({"lines": [{"amount": "42.00", "quantity": 0}]}, "lines.0.quantity"),
    ({"lines": [{"amount": "42.00", "colour": "red"}]}, "lines.0.colour"),
    ({"points_earned": 1000}, "points_earned"),
])
def test_absurd_purchases_are_refused_with_field_errors(api, member, change, field):
    body = purchase_body(member, "BAD-1")
    change = dict(change)
    if change.get("occurred_at") == "__year_ago__":
        change["occurred_at"] = _iso(-timedelta(days=366))
    if change.get("occurred_at") == "__tomorrow_plus__":
        change["occurred_at"] = _iso(timedelta(days=1, hours=1))
    body.update(change)
    response = api.post("/purchases/", body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"], response.json()
    assert not Purchase.objects.exists()
    assert Member.objects.get(pk=member.pk).points_balance == 0


def test_a_purchase_within_the_time_bounds_is_accepted(api, member):
    for n, delta in enumerate([-timedelta(days=364), timedelta(hours=23)]):
        response = api.post("/purchases/", purchase_body(member, f"OK-{n}", occurred_at=_iso(delta)))
        assert response.status_code == 201, response.content


# --- Store day totals (the participation rate's base) ----------------------------------------------

def test_a_till_reports_its_days_receipts_and_a_correction_replaces_them(api, partner):
    from rewards.models import StoreDayTotal

    day = (timezone.localdate() - timedelta(days=1)).isoformat()
    first = api.post("/store-days/", {"store": "S1", "day": day, "receipts": 120, "revenue": "2400.00"})
    assert first.status_code == 200, first.text
    assert first.json()["receipts"] == 120 and first.json()["store"] == "S1"
    api.post("/store-days/", {"store": "S1", "day": day, "receipts": 125, "revenue": "2450.50"})
    total = StoreDayTotal.objects.get()
    assert (total.receipts, total.revenue) == (125, Decimal("2450.50"))


@pytest.mark.parametrize(("change", "field"), [
    ({"store": "F1"}, "store"), ({"store": "NOPE"}, "store"), ({"receipts": -1}, "receipts"),
    ({"revenue": "-1.00"}, "revenue"), ({"day": "__future__"}, "day"), ({"currency": "USD"}, "currency"),
    ({"members": 10}, "members"),
])
def test_bad_store_days_are_refused(api, change, field):
    from rewards.models import StoreDayTotal

    body = {"store": "S1", "day": timezone.localdate().isoformat(), "receipts": 10, "revenue": "100.00", **change}
    if body["day"] == "__future__":
        body["day"] = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = api.post("/store-days/", body)
    assert response.status_code == 400 and field in response.json()["errors"], response.text
    assert not StoreDayTotal.objects.exists()


def test_an_oversized_body_is_refused_with_413_and_changes_nothing(api, member, settings):
    body = purchase_body(member, "HUGE-1", lines=[{"sku": "X" * 60, "amount": "1.00"}] * 400)
    body["padding"] = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = api.post("/purchases/", body)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert not Purchase.objects.exists()
