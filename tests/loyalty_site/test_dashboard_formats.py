"""#23: the dashboard's and the campaign results' numbers and dates follow the page's language
(3.497,94 / 04.12.2026 in German, 3,497.94 / 4 Dec 2026 in English), and the points liability
per expiry month in EUR and CHF."""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from campaigns import services as campaign_services
from loyalty_site.dashboard import compute_figures, liability_by_expiry_month
from rewards.models import PointEntry
from rewards.purchases import purchase_record
from tests import factories


def page(client, url_name: str, language: str, *args) -> str:
    with translation.override(language):
        url = reverse(url_name, args=args)
    response = client.get(url)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.fixture
def big_buyer(tiers, partner, base_rule):
    """One member bought for 3,497.94 EUR yesterday: 3,497 points."""
    member = factories.enrolled_member()
    at = timezone.now() - timedelta(days=1)
    purchase_record(member_id=member.pk, partner=partner, order_reference="BIG", amount=Decimal("3497.94"),
                    occurred_at=at, booked_at=at)
    return member


def test_dashboard_figures_and_dates_are_german_on_the_german_page(admin_client, big_buyer):
    compute_figures()
    text = page(admin_client, "admin:index", "de")
    today = timezone.localdate()
    assert "3.497,94" in text and "3497,94" not in text  # average order value, grouped
    assert "3.497" in text  # points issued
    assert today.strftime("%d.%m.%Y") in text  # "Figures as of 04.12.2026 …"
    assert (today - timedelta(days=1)).strftime("%d.%m.%Y") in text  # a chart label
    assert '"yAxisTitle": "EUR"' in text and '"displayYAxis": true' in text


def test_dashboard_figures_and_dates_are_english_on_the_english_page(admin_client, big_buyer):
    compute_figures()
    text = page(admin_client, "admin:index", "en")
    today = timezone.localdate()
    assert "3,497.94" in text and "3.497,94" not in text
    assert f"{today.day} {today.strftime('%b %Y')}" in text  # 4 Dec 2026, not 12/04/2026
    assert today.strftime("%m/%d/%Y") not in text


def _credit(member, points: int, expires_at: datetime) -> None:
    factories.PointEntryFactory(member=member, kind=PointEntry.Kind.BONUS, points=points, reason="Bonus",
                                expires_at=expires_at)


def _in_months(months: int) -> datetime:
    today = timezone.localdate()
    year, index = divmod(today.month - 1 + months, 12)
    return timezone.make_aware(datetime(today.year + year, index + 1, 15, 12))


def test_liability_per_expiry_month_in_eur_and_chf(tiers, settings):
    settings.LOYALTY_POINT_VALUE_EUR = "0.01"
    settings.LOYALTY_CURRENCY_TO_EUR = {"EUR": "1", "CHF": "1.06"}
    anna, ben = factories.enrolled_member(), factories.enrolled_member()
    _credit(anna, 100_000, _in_months(1))
    _credit(ben, 25_000, _in_months(1))
    _credit(ben, 5_300, _in_months(3))
    _credit(ben, 999, _in_months(13))  # beyond the next 12 months
    rows = liability_by_expiry_month(compute_figures())
    assert len(rows) == 12 and rows[0]["month"] == timezone.localdate().replace(day=1)
    assert [row["points"] for row in rows[:4]] == [0, 125_000, 0, 5_300]
    assert (rows[1]["eur"], rows[1]["chf"]) == (Decimal("1250.00"), Decimal("1179.25"))  # 1250 / 1.06
    assert (rows[3]["eur"], rows[3]["chf"]) == (Decimal("53.00"), Decimal("50.00"))
    assert sum(row["points"] for row in rows) == 130_300


def test_liability_table_on_the_dashboard_in_german_and_english(admin_client, tiers, settings):
    settings.LOYALTY_POINT_VALUE_EUR = "0.01"
    settings.LOYALTY_CURRENCY_TO_EUR = {"EUR": "1", "CHF": "1.06"}
    _credit(factories.enrolled_member(), 125_000, _in_months(1))
    compute_figures()
    month = _in_months(1).date()
    german = page(admin_client, "admin:index", "de")
    assert 'data-testid="liability-by-month"' in german
    assert month.strftime("%m.%Y") in german and "125.000" in german
    assert "1.250,00" in german and "1.179,25" in german
    english = page(admin_client, "admin:index", "en")
    assert f"{month.strftime('%b %Y')}" in english and "1,250.00" in english and "1,179.25" in english


def test_liability_is_one_query_whatever_the_number_of_credits(tiers):
    def liability_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            compute_figures()
        return sum("rewards_pointentry e" in query["sql"] for query in queries.captured_queries), len(queries)

    _credit(factories.enrolled_member(), 10, _in_months(1))
    few = liability_queries()
    for months in range(2, 8):
        _credit(factories.enrolled_member(), 10 * months, _in_months(months))
    many = liability_queries()
    assert few[0] == many[0] == 1
    assert few[1] == many[1]  # the whole computation does not grow with the ledger


def test_campaign_revenue_is_grouped_in_the_pages_language(admin_client, tiers):
    member = factories.enrolled_member()
    factories.ConsentRecordFactory(member=member, purpose="email")
    campaign = factories.CampaignFactory(holdout_percent=0)
    factories.VariantFactory(campaign=campaign, name="A")
    campaign_services.campaign_launch(campaign_id=campaign.pk)
    campaign_services.campaign_run_inline(campaign_id=campaign.pk)
    factories.PurchaseFactory(member=member, partner=factories.PartnerFactory(), amount=Decimal("1173.60"),
                              occurred_at=timezone.now() + timedelta(minutes=1))
    german = page(admin_client, "admin:campaigns_campaign_change", "de", campaign.pk)
    assert "1.173,60" in german and "1,173,60" not in german
    assert "100,0 %" in german  # the conversion rate
    english = page(admin_client, "admin:campaigns_campaign_change", "en", campaign.pk)
    assert "1,173.60" in english and "100.0 %" in english


def test_month_and_day_formats_follow_the_language():
    from loyalty_site import formatting

    with translation.override("de"):
        assert formatting.day(date(2026, 12, 4)) == "04.12.2026"
        assert formatting.money(Decimal("3497.94")) == "3.497,94"
        assert formatting.percent(0.125) == "12,5 %"
    with translation.override("en"):
        assert formatting.day(date(2026, 12, 4)) == "4 Dec 2026"
        assert formatting.money(3497.94) == "3,497.94"
        assert formatting.figure(177296) == "177,296"
