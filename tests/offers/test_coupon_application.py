"""A purchase applies the member's activated coupons: matching rules, limits, the breakdown in the
API response, returns, and no extra query for members without a coupon."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from offers.models import MemberOffer, OfferUse
from partners.models import Store
from rewards.models import PointEntry, Purchase, PurchasePoints
from rewards.purchases import LineData, purchase_record
from tests import factories
from tests.api_support import purchase_body

pytestmark = pytest.mark.django_db


def _buy(member, partner, reference, lines, store=None, **kwargs):
    amount = sum((Decimal(line.amount) for line in lines), Decimal(0))
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=amount,
                           store=store, lines=lines, **kwargs).purchase


def _offer_points(purchase: Purchase) -> list[tuple[str, int]]:
    return [(part.label_de, part.points) for part in PurchasePoints.objects.filter(purchase=purchase, kind="offer")]


def test_a_multiplier_coupon_doubles_the_points_of_the_matching_lines(member, partner, base_rule):
    factories.activated_coupon(member, name_de="Bio-Woche", category="Bio", value=Decimal("2.00"))
    purchase = _buy(member, partner, "B-1", [LineData(amount=Decimal("30.00"), category="bio"),
                                             LineData(amount=Decimal("10.00"), category="Kaffee")])
    assert purchase.points_earned == 40 + 30
    assert _offer_points(purchase) == [("Bio-Woche", 30)]
    assert [line.points for line in purchase.lines.order_by("pk")] == [60, 10]
    member.refresh_from_db()
    assert member.points_balance == 70
    assert MemberOffer.objects.get(member=member).uses == 1


def test_a_bonus_coupon_needs_its_store_and_minimum_spend(member, partner, base_rule):
    berlin = factories.StoreFactory(partner=partner, code="BER")
    munich = factories.StoreFactory(partner=partner, code="MUC")
    factories.activated_coupon(member, name_de="Filial-Bonus", effect="bonus", value=Decimal("200"), store=berlin,
                               min_spend=Decimal("30.00"))
    elsewhere = _buy(member, partner, "S-1", [LineData(amount=Decimal("50.00"))], store=munich)
    too_little = _buy(member, partner, "S-2", [LineData(amount=Decimal("29.99"))], store=berlin)
    matching = _buy(member, partner, "S-3", [LineData(amount=Decimal("30.00"))], store=berlin)
    assert _offer_points(elsewhere) == [] and _offer_points(too_little) == []
    assert _offer_points(matching) == [("Filial-Bonus", 200)] and matching.points_earned == 230


def test_a_sku_coupon_ignores_other_products(member, partner, base_rule):
    factories.activated_coupon(member, effect="bonus", value=Decimal("50"), sku="KAF-1")
    other = _buy(member, partner, "K-1", [LineData(amount=Decimal("10.00"), sku="KAF-2")])
    assert _offer_points(other) == []
    hit = _buy(member, partner, "K-2", [LineData(amount=Decimal("10.00"), sku="kaf-1")])
    assert [points for _label, points in _offer_points(hit)] == [50]


def test_a_coupon_not_activated_expired_or_held_out_is_not_applied(member, partner, base_rule):
    factories.MemberOfferFactory(member=member, offer=factories.OfferFactory())  # not activated
    expired = factories.activated_coupon(member)
    expired.offer.valid_from = timezone.now() - timedelta(days=10)
    expired.offer.valid_until = timezone.now() - timedelta(days=1)
    expired.offer.save()
    factories.MemberOfferFactory(member=member, offer=factories.OfferFactory(), holdout=True)
    purchase = _buy(member, partner, "N-1", [LineData(amount=Decimal("20.00"))])
    assert _offer_points(purchase) == [] and purchase.points_earned == 20
    assert not OfferUse.objects.exists()


def test_a_coupon_applies_only_up_to_its_limit_per_member(member, partner, base_rule):
    coupon = factories.activated_coupon(member, effect="bonus", value=Decimal("10"), uses_per_member=2)
    purchases = [_buy(member, partner, f"L-{n}", [LineData(amount=Decimal("5.00"))]) for n in range(3)]
    assert [len(_offer_points(purchase)) for purchase in purchases] == [1, 1, 0]
    coupon.refresh_from_db()
    assert coupon.uses == 2 and OfferUse.objects.filter(member_offer=coupon).count() == 2


def test_several_coupons_apply_to_one_purchase(member, partner, base_rule):
    factories.activated_coupon(member, name_de="A", effect="bonus", value=Decimal("5"))
    factories.activated_coupon(member, name_de="B", value=Decimal("3.00"))
    purchase = _buy(member, partner, "M-1", [LineData(amount=Decimal("10.00"))])
    assert sorted(_offer_points(purchase)) == [("A", 5), ("B", 20)]
    assert purchase.points_earned == 35


def test_a_purchase_of_a_member_without_an_activated_coupon_costs_no_query_of_offers(member, partner, base_rule):
    factories.relate(member, partner)
    _buy(member, partner, "WARM", [LineData(amount=Decimal("1.00"))])  # caches warm
    with CaptureQueriesContext(connection) as queries:
        _buy(member, partner, "Q-1", [LineData(amount=Decimal("10.00"))])
    assert not any("offers_memberoffer" in query["sql"] and "EXISTS" not in query["sql"].upper()
                   for query in queries.captured_queries)
    assert not any("offers_offeruse" in query["sql"] for query in queries.captured_queries)


def test_the_breakdown_in_the_api_response_names_the_coupon(api, member, partner):
    factories.relate(member, partner)
    factories.activated_coupon(member, name_de="Bio-Woche: doppelte Punkte", name_en="Organic week: double points",
                               category="Bio")
    response = api.post("/purchases/", purchase_body(member, "API-1", amount="30.00", lines=[
        {"sku": "BIO-1", "category": "Bio", "amount": "20.00"}, {"sku": "X", "category": "Brot", "amount": "10.00"}]))
    assert response.status_code == 201, response.text
    body = response.json()
    assert [(part["kind"], part["label"], part["points"]) for part in body["breakdown"]] == [
        ("base", "1 Punkt pro Euro", 30), ("offer", "Organic week: double points", 20)]
    assert body["points_earned"] == 50 and [line["points"] for line in body["lines"]] == [40, 10]
    again = api.get(f"/purchases/{body['id']}/").json()
    assert again["breakdown"] == body["breakdown"] and again["points_earned"] == 50


def test_a_return_reverses_the_coupon_bonus_proportionally(api, member, partner):
    factories.relate(member, partner)
    factories.activated_coupon(member, category="Bio")
    body = api.post("/purchases/", purchase_body(member, "RET-1", amount="40.00", lines=[
        {"sku": "BIO-1", "category": "Bio", "amount": "20.00"}, {"sku": "X", "category": "Brot", "amount": "20.00"}],
    )).json()
    bio_line = body["lines"][0]
    returned = api.post(f"/purchases/{body['id']}/returns/", {"reference": "CN-1", "lines": [
        {"line_id": bio_line["id"], "amount": "10.00"}]})
    assert returned.status_code == 201, returned.text
    assert returned.json()["points_reversed"] == 20  # half of the Bio line's 20 base + 20 coupon points
    member.refresh_from_db()
    assert member.points_balance == 60 - 20
    assert sum(PointEntry.objects.filter(member=member).values_list("points", flat=True)) == member.points_balance


def test_points_of_a_coupon_are_held_with_the_purchase_during_the_return_window(member, partner, base_rule, settings):
    settings.LOYALTY_RETURN_WINDOW_DAYS = 14
    factories.activated_coupon(member, effect="bonus", value=Decimal("100"))
    purchase = _buy(member, partner, "W-1", [LineData(amount=Decimal("10.00"))])
    member.refresh_from_db()
    assert (purchase.points_pending, member.points_pending, member.points_balance) == (110, 110, 0)
    purchase.refresh_from_db()
    assert purchase.points_pending == 110 and purchase.points_earned == 110


def test_an_unrelated_store_object_is_fine_for_the_store_condition(member, partner, base_rule):
    # A coupon bound to a store never applies to an online purchase without a store.
    store = Store.objects.create(partner=partner, code="ONLY", name="Nur hier")
    factories.activated_coupon(member, effect="bonus", value=Decimal("10"), store=store)
    purchase = _buy(member, partner, "O-1", [LineData(amount=Decimal("10.00"))], channel="online")
    assert _offer_points(purchase) == []
