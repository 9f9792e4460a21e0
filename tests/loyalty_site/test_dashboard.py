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
from rewards.ledger import points_debit, points_expire_due
from rewards.purchases import purchase_record
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


def test_campaign_uplift_referral_conversion_and_nps_match_the_hand_computed_figures(tiers, partner, base_rule):
    from campaigns.models import Campaign, Message
    from referrals.models import Referral

    now = timezone.now()
    # A campaign started 5 days ago: 4 members messaged, 2 of them bought within the window;
    # 4 held out, 1 of them bought. Uplift = 2/4 - 1/4 = 25 percentage points.
    campaign = factories.CampaignFactory(holdout_percent=50, status=Campaign.Status.DONE,
                                         started_at=now - timedelta(days=5))
    variant = factories.VariantFactory(campaign=campaign)
    sent_at = now - timedelta(days=5)
    people = [factories.enrolled_member() for _ in range(8)]
    for index, person in enumerate(people):
        control = index >= 4
        factories.MessageFactory(
            campaign=campaign, member=person, variant=None if control else variant, is_control=control,
            status=Message.Status.SKIPPED if control else Message.Status.SENT,
            skip_reason=Message.SkipReason.HOLDOUT if control else "", processed_at=sent_at)
    for person in (people[0], people[1], people[4]):
        purchase_record(member_id=person.pk, partner=partner, order_reference=f"C-{person.pk}",
                        amount=Decimal("10"), occurred_at=now - timedelta(days=2))

    # Referrals attributed in the last 30 days: 1 rewarded, 1 qualified, 2 pending -> 50 %.
    program = factories.ReferralProgramFactory()
    at = now - timedelta(days=3)
    for index, status in enumerate(["rewarded", "qualified", "pending", "pending"]):
        times = {"qualified_at": at, "payable_at": at} if status != "pending" else {}
        if status == "rewarded":
            times["rewarded_at"] = at
        Referral.objects.create(program=program, referrer=people[0], referee=people[index + 1], code="X",
                                channel=Referral.Channel.LINK, status=status, started_at=at, created_at=at, **times)

    # NPS answers this month: 3 promoters, 1 passive, 1 detractor -> (3 - 1) / 5 = 40.
    survey = factories.SurveyFactory()
    for score in (10, 9, 9, 7, 3):
        factories.ResponseFactory(survey=survey, score=score, created_at=now - timedelta(days=1))

    figures = compute_figures()
    cards = kpis(figures, 30)
    assert card(cards, "Campaign uplift vs. holdout (percentage points)")["value"] == pytest.approx(0.25)
    assert card(cards, "Referral conversion")["value"] == pytest.approx(0.5)
    assert card(cards, "NPS")["value"] == 40
    assert figures["nps_by_month"][-1][1] == 40.0


def test_programme_kpis_are_empty_not_zero_without_data(tiers):
    cards = kpis(compute_figures(), 30)
    for label in ("Campaign uplift vs. holdout (percentage points)", "Referral conversion", "NPS"):
        assert card(cards, label)["value"] is None


def test_participation_is_member_purchases_over_reported_receipts(tiers, partner, base_rule):
    from rewards.purchases import store_day_report

    store = factories.StoreFactory(partner=partner, code="P1")
    other = factories.StoreFactory(partner=partner, code="P2")
    yesterday = timezone.localdate() - timedelta(days=1)
    noon = timezone.make_aware(timezone.datetime.combine(yesterday, timezone.datetime.min.time())) + timedelta(hours=12)
    member = factories.enrolled_member()
    for n in range(3):  # 3 member purchases in P1 yesterday, 1 in P2 (which reported nothing)
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"P-{n}", amount=Decimal("10"),
                        occurred_at=noon, store=store)
    purchase_record(member_id=member.pk, partner=partner, order_reference="P-x", amount=Decimal("10"),
                    occurred_at=noon, store=other)
    store_day_report(store=store, day=yesterday, receipts=12, revenue=Decimal("300"))
    assert card(kpis(compute_figures(), 30), "Participation rate")["value"] == pytest.approx(3 / 12)


def test_imported_customers_are_not_counted_as_new_sign_ups(tiers):
    """#23: the customer-since column ("Kunde seit") is the imported member's join date, so the
    enrolments card and chart count the customer when they became one, not on the import day."""
    from tests.import_helpers import csv_bytes, full_import

    factories.enrolled_member(first_name="Neu")  # a real sign-up today
    job = full_import(csv_bytes("Kundennummer;E-Mail;Vorname;Kunde seit\n"
                                "K1;k1@example.de;Alt;01.02.2015\n"
                                "K2;k2@example.de;Älter;15.06.2009\n"))
    assert job.counts["new"] == 2 and job.dry_run["columns"]["Kunde seit"] == "joined_at"
    figures = compute_figures()
    assert card(kpis(figures, 30), "Enrolments")["value"] == 1
    assert sum(day.get("enrolments", 0) for day in figures["daily"].values()) == 1


def test_cards_count_todays_entries_between_local_midnight_and_utc_midnight(settings):
    """At 00:30 in Berlin (23:30 UTC) the figures' stamp is still yesterday in UTC, while the
    daily series already files today's entries under the local day: they belong to the period."""
    settings.TIME_ZONE = "Europe/Berlin"
    figures = {"computed_at": "2026-12-04T23:30:00+00:00", "members_total": 1, "active_members": 1,
               "daily": {"2026-12-05": {"issued": 100, "redeemed": 60}}, "periods": {}, "liability": []}
    cards = kpis(figures, 30)
    assert card(cards, "Points issued")["value"] == 100
    assert card(cards, "Points redeemed")["value"] == 60
