"""The operator console in a real browser: the KPI dashboard (charts drawn by unfold's local
Chart.js) and a member's 360° page, with screenshots at phone and desktop width for review."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from loyalty_site.dashboard import compute_figures
from rewards.demo import seed_catalogue_basics
from rewards.ledger import points_adjust
from rewards.purchases import LineData, purchase_record
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in_as_staff(page, live_server) -> None:
    """A superuser's session cookie handed to the browser (the login form has its own tests)."""
    client = Client()
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])


def test_dashboard_and_member_360_page(page, live_server, screenshot):
    partner, stores = seed_catalogue_basics()
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)
    now = timezone.now()
    members = [factories.enrolled_member(first_name=name, last_name="Beispiel") for name in ("Erika", "Jonas", "Aylin")]
    for day in range(0, 120, 4):
        member = members[day % 3]
        at = now - timedelta(days=day)
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"BON-{day}",
                        amount=Decimal(20 + day), occurred_at=at, booked_at=at, store=stores[day % len(stores)],
                        lines=[LineData(amount=Decimal(20 + day), category="Kaffee")])
    points_adjust(member_id=members[0].pk, points=-50, reason="Kulanz korrigiert", staff_user=None)
    compute_figures()
    _sign_in_as_staff(page, live_server)

    page.goto(live_server.url + reverse("admin:index"))
    expect(page.locator('[data-testid="kpis"]')).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible()  # Chart.js drew something, from local files
    screenshot(page, "console-dashboard")

    page.goto(live_server.url + reverse("admin:members_member_change", args=[members[0].pk]))
    expect(page.get_by_text("Kulanz korrigiert").first).to_be_visible()
    expect(page.get_by_text("BON-0").first).to_be_visible()
    screenshot(page, "console-member-360")
