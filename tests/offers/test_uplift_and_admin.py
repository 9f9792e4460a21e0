"""The console: offers with their counts (no N+1), creating one with its validation, the
assignment action, the results per arm and the uplift against the holdout (one query)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from offers import selectors
from offers.models import MemberOffer, Offer
from rewards.purchases import LineData, purchase_record
from rewards.returns import purchase_return
from tests import factories

pytestmark = pytest.mark.django_db


def _buy(member, partner, reference, amount, *, at=None):
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=Decimal(amount),
                           occurred_at=at, booked_at=at, lines=[LineData(amount=Decimal(amount))]).purchase


def _arm_member(offer, *, holdout=False, activated=False):
    coupon = factories.MemberOfferFactory(offer=offer, holdout=holdout)
    if activated:
        MemberOffer.objects.filter(pk=coupon.pk).update(activated_at=timezone.now() - timedelta(hours=1))
    return coupon.member


def test_results_count_each_arm_and_its_purchases_in_the_offer_period(tiers, partner, base_rule):
    offer = factories.OfferFactory(effect="bonus", value=10, valid_from=timezone.now() - timedelta(days=5))
    treated = [_arm_member(offer, activated=True) for _ in range(3)] + [_arm_member(offer)]
    held = [_arm_member(offer, holdout=True) for _ in range(2)]
    _buy(treated[0], partner, "T0-a", "40.00")  # applies the coupon
    _buy(treated[0], partner, "T0-b", "20.00")
    _buy(treated[1], partner, "T1", "30.00")
    _buy(treated[2], partner, "T2-before", "99.00", at=timezone.now() - timedelta(days=9))  # before the offer
    returned = _buy(held[0], partner, "H0", "50.00")
    purchase_return(purchase_id=returned.pk, reference="CN", amount=Decimal("10.00"))  # spend net of returns

    with CaptureQueriesContext(connection) as queries:
        results = selectors.offer_results(offer)
    assert len(queries.captured_queries) == 1
    t, h = results.treated, results.holdout
    assert (t.size, t.activated, t.redeemed, t.buyers, t.purchases, t.spend) == (4, 3, 2, 2, 3, Decimal("90.00"))
    assert (h.size, h.activated, h.redeemed, h.buyers, h.purchases, h.spend) == (2, 0, 0, 1, 1, Decimal("40.00"))
    assert t.spend_per_member == Decimal("22.50") and h.spend_per_member == Decimal("20.00")
    assert t.purchases_per_member == Decimal("0.75") and h.purchases_per_member == Decimal("0.50")
    assert results.uplift is not None and results.uplift.difference == pytest.approx(0.0)
    assert results.spend_difference == Decimal("2.50")


def test_results_without_a_holdout_have_no_uplift(tiers):
    offer = factories.OfferFactory()
    _arm_member(offer)
    results = selectors.offer_results(offer)
    assert results.treated.size == 1 and results.holdout.size == 0 and results.uplift is None


def test_the_offer_changelist_reads_a_constant_number_of_queries(admin_client, tiers):
    url = reverse("admin:offers_offer_changelist")

    def add(count):
        for _ in range(count):
            offer = factories.OfferFactory(store=factories.StoreFactory(), segment=factories.SegmentFactory(),
                                           audience="segment")
            _arm_member(offer, activated=True)

    add(2)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    add(6)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)
    assert response.context["cl"].result_count == 8


@pytest.mark.parametrize("model", ["memberoffer", "offeruse"])
def test_the_coupon_records_are_read_only_and_list_without_n_plus_1(admin_client, tiers, partner, base_rule, model):
    url = reverse(f"admin:offers_{model}_changelist")

    def add(count):
        for n in range(count):
            member = factories.enrolled_member()
            factories.activated_coupon(member, effect="bonus", value=5)
            _buy(member, partner, f"R-{member.pk}-{n}", "5.00")

    add(2)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    add(5)
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(url).status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)
    assert admin_client.get(reverse(f"admin:offers_{model}_add")).status_code == 403


def _offer_form(**changes) -> dict:
    now = timezone.localtime()
    data = {
        "name_de": "Bio-Woche", "name_en": "Organic week", "description_de": "", "description_en": "",
        "active": "on", "effect": "multiplier", "value": "2.00", "uses_per_member": "1", "category": "Bio",
        "sku": "", "store": "", "min_spend": "", "valid_from_0": now.date().isoformat(), "valid_from_1": "00:00:00",
        "valid_until_0": (now + timedelta(days=7)).date().isoformat(), "valid_until_1": "23:59:00",
        "audience": "everyone", "segment": "", "history_category": "", "history_days": "90", "holdout_percent": "10",
    }
    data.update(changes)
    return data


def test_marketing_creates_an_offer_and_assigns_it_from_the_console(client, tiers):
    marketing = factories.staff_in("Marketing")
    client.force_login(marketing)
    members = [factories.enrolled_member() for _ in range(4)]
    response = client.post(reverse("admin:offers_offer_add"), _offer_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    offer = Offer.objects.get(name_de="Bio-Woche")
    assigned = client.post(reverse("admin:offers_offer_changelist"),
                           {"action": "assign_action", "_selected_action": [offer.pk]}, follow=True)
    assert "4 members added" in assigned.content.decode() or "4 Mitglieder" in assigned.content.decode()
    assert MemberOffer.objects.filter(offer=offer).count() == len(members)
    page = client.get(reverse("admin:offers_offer_change", args=[offer.pk])).content.decode()
    assert 'data-testid="offer-results"' in page


@pytest.mark.parametrize(("changes", "field"), [
    ({"value": "1.00"}, "value"),
    ({"effect": "bonus", "value": "10.5"}, "value"),
    ({"audience": "segment"}, "segment"),
    ({"audience": "history"}, "history_category"),
    ({"holdout_percent": "95"}, "holdout_percent"),
    ({"valid_until_0": "2020-01-01"}, "valid_until"),
])
def test_the_console_refuses_an_offer_that_cannot_work(admin_client, tiers, changes, field):
    response = admin_client.post(reverse("admin:offers_offer_add"), _offer_form(**changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Offer.objects.exists()


def test_support_sees_coupons_but_cannot_assign_or_edit(client, tiers):
    support = factories.staff_in("Support")
    client.force_login(support)
    offer = factories.OfferFactory()
    assert client.get(reverse("admin:offers_memberoffer_changelist")).status_code == 200
    assert client.get(reverse("admin:offers_offer_add")).status_code == 403
    client.post(reverse("admin:offers_offer_changelist"), {"action": "assign_action", "_selected_action": [offer.pk]})
    assert not MemberOffer.objects.exists()
