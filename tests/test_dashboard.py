"""The KPI dashboard against a small fixture computed by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty_site.dashboard import compute_figures, kpis
from rewards.services import points_debit, points_expire_due, purchase_record
from tests import factories


@pytest.fixture
def shop(tiers, partner, base_rule):
    """Anna buys 3 times (100, 50, 30 EUR) in the last 30 days, Ben once (20 EUR) 45 days ago and
    once (80 CHF = 84.80 EUR) 10 days ago, Cem bought 40 days ago only; Anna spends 60 points."""
    now = timezone.now()
    anna, ben, cem = (factories.enrolled_member(first_name=name) for name in ("Anna", "Ben", "Cem"))

    def buy(member, amount, days_ago, currency="EUR"):
        at = now - timedelta(days=days_ago)
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"{member.pk}-{days_ago}",
                        amount=Decimal(amount), currency=currency, occurred_at=at, booked_at=at)

    buy(anna, "100", 20)
    buy(anna, "50", 10)
    buy(anna, "30", 2)
    buy(ben, "20", 45)
    buy(ben, "80", 10, currency="CHF")
    buy(cem, "40", 40)
    points_debit(member_id=anna.pk, points=60, reason="Gutschein")
    return anna, ben, cem


def card(cards, label):
    return next(card for card in cards if str(card["label"]) == label)


def test_kpis_for_the_last_30_days_match_the_hand_computed_figures(shop, settings):
    settings.LOYALTY_POINT_VALUE_EUR = "0.01"
    figures = compute_figures()
    cards = kpis(figures, 30)
    assert card(cards, "Members")["value"] == 3
    assert card(cards, "Active members (90 days)")["value"] == 3
    # 30 days: Anna 3 purchases, Ben 1 → 2 buying members, 1 repeat buyer
    assert card(cards, "Repeat-purchase rate")["value"] == pytest.approx(0.5)
    # revenue 100 + 50 + 30 + 84.80 = 264.80 over 4 purchases
    assert card(cards, "Average order value (EUR)")["value"] == pytest.approx(66.20)
    # previous 30 days (31-60 days ago): Ben and Cem bought; Ben came back, Cem did not
    assert card(cards, "Churn")["value"] == pytest.approx(0.5)
    # points issued in 30 days: 100 + 50 + 30 + 80 (1 point per franc with the base rule) = 260
    assert card(cards, "Points issued")["value"] == 260
    assert card(cards, "Points redeemed")["value"] == 60
    assert card(cards, "Redemption rate")["value"] == pytest.approx(60 / 260)
    # all points (320 issued - 60 spent = 260 + Ben's 20 + Cem's 40 ... ) outstanding:
    total_points = 100 + 50 + 30 + 20 + 80 + 40 - 60
    assert card(cards, "Outstanding liability (EUR)")["value"] == pytest.approx(total_points * 0.01)
    assert sum(points for _month, points in figures["liability"]) == total_points


def test_liability_spends_oldest_points_first_and_drops_expired_ones(tiers, partner, base_rule):
    member = factories.enrolled_member()
    old = timezone.now() - timedelta(days=740)  # expired after 24 months
    purchase_record(member_id=member.pk, partner=partner, order_reference="OLD", amount=Decimal("100"),
                    occurred_at=old, booked_at=old)
    purchase_record(member_id=member.pk, partner=partner, order_reference="NEW", amount=Decimal("50"))
    points_debit(member_id=member.pk, points=30, reason="Gutschein")  # from the old 100
    points_expire_due()  # the 70 left of the old credit expire
    figures = compute_figures()
    assert sum(points for _month, points in figures["liability"]) == 50
    assert card(kpis(figures, 30), "Points expired (breakage)")["value"] == 70


def test_dashboard_page_and_csv(admin_client, shop):
    compute_figures()
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:index"), {"days": 90})
    assert response.status_code == 200
    assert len(queries) < 15  # figures come from the cache, whatever the data size
    page = response.content.decode()
    assert 'data-testid="kpis"' in page and "chart" in page
    csv_response = admin_client.get(reverse("dashboard_csv", args=["revenue"]), {"days": 30})
    assert csv_response["Content-Type"].startswith("text/csv")
    body = csv_response.content.decode()
    assert body.splitlines()[0].startswith("label,")
    assert admin_client.get(reverse("dashboard_csv", args=["nope"])).status_code == 404


def test_dashboard_csv_is_staff_only(client, shop):
    response = client.get(reverse("dashboard_csv", args=["revenue"]))
    assert response.status_code == 302 and "login" in response["Location"]
