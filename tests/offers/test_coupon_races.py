"""Races against real PostgreSQL: parallel purchases of one member with a coupon limited to one use
apply it exactly once, over the partner API as well as through the service; the ledger holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from offers import services
from offers.models import MemberOffer, OfferUse
from rewards.models import PointEntry, Purchase, PurchasePoints
from rewards.purchases import LineData, purchase_record
from tests import factories
from tests.api_support import ApiClient, purchase_body
from tests.concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)



def _assert_applied_once(member, coupon) -> None:
    coupon.refresh_from_db()
    assert coupon.uses == 1
    assert OfferUse.objects.filter(member_offer=coupon).count() == 1
    assert PurchasePoints.objects.filter(purchase__member=member, kind="offer").count() == 1
    member.refresh_from_db()
    total = PointEntry.objects.filter(member=member).aggregate(total=Sum("points"))["total"]
    assert member.points_balance == total
    earned = Purchase.objects.filter(member=member).aggregate(total=Sum("points_earned"))["total"]
    assert total == earned
    call_command("verify_ledger")  # raises on any member whose balance isn't its entries


def test_parallel_purchases_apply_a_one_use_coupon_once():
    factories.tier_ladder()
    partner = factories.PartnerFactory(name="Race GmbH")
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1)
    member = factories.enrolled_member()
    coupon = factories.activated_coupon(member, effect="bonus", value=Decimal("500"), uses_per_member=1)

    def buy(index: int):
        return purchase_record(member_id=member.pk, partner=partner, order_reference=f"R-{index}",
                               amount=Decimal("10.00"), lines=[LineData(amount=Decimal("10.00"))])

    outcomes = run_in_threads(12, buy, results=True)
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
    _assert_applied_once(member, coupon)
    assert member.points_balance == 12 * 10 + 500


def test_parallel_purchases_over_the_api_apply_a_one_use_coupon_once(live_api, partner, tiers):
    member = factories.relate(factories.enrolled_member(), partner)
    coupon = factories.activated_coupon(member, name_en="Race bonus", effect="bonus", value=Decimal("250"))

    def post(index: int):
        client = ApiClient(live_api.base_url, live_api.key, partner=partner)
        return client.post("/purchases/", purchase_body(member, f"HTTP-{index}", amount="20.00"))

    responses = run_in_threads(8, post, results=True)
    assert [response.status_code for response in responses] == [201] * 8, responses
    with_coupon = [response.json() for response in responses
                   if any(part["kind"] == "offer" for part in response.json()["breakdown"])]
    assert len(with_coupon) == 1
    assert [(part["label"], part["points"]) for part in with_coupon[0]["breakdown"] if part["kind"] == "offer"] == [
        ("Race bonus", 250)]
    _assert_applied_once(member, coupon)


def test_activation_racing_purchases_never_uses_a_coupon_twice():
    factories.tier_ladder()
    partner = factories.PartnerFactory(name="Race GmbH")
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1)
    member = factories.enrolled_member()
    coupon = factories.MemberOfferFactory(member=member, offer=factories.OfferFactory(effect="bonus", value=50))

    def work(index: int):
        if index % 3 == 0:
            return services.member_offer_activate(member_id=member.pk, member_offer_id=coupon.pk)
        return purchase_record(member_id=member.pk, partner=partner, order_reference=f"A-{index}",
                               amount=Decimal("5.00"))

    outcomes = run_in_threads(9, work, results=True)
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
    coupon.refresh_from_db()
    assert coupon.activated_at is not None and coupon.uses <= 1
    assert MemberOffer.objects.get(pk=coupon.pk).uses == OfferUse.objects.filter(member_offer=coupon).count()
    call_command("verify_ledger")
