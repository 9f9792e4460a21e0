"""#23: the dashboard's charts have titled value axes whose ticks read in the page's language."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from loyalty_site.dashboard import compute_figures
from rewards.purchases import purchase_record
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXES = """() => [...document.querySelectorAll("canvas.chart")].map((canvas) => {
  const chart = Chart.getChart(canvas);
  return {title: chart.options.scales.y.title.text, x: chart.options.scales.x.title.text,
          ticks: chart.scales.y.ticks.map((tick) => tick.label)};
})"""


def _charts(page, live_server, language: str) -> list[dict]:
    with translation.override(language):
        page.goto(live_server.url + reverse("admin:index"))
    page.wait_for_function("() => document.querySelectorAll('canvas.chart').length && "
                           "[...document.querySelectorAll('canvas.chart')].every((c) => Chart.getChart(c))")
    return page.evaluate(AXES)


def test_chart_value_axes_are_titled_and_localised(page, live_server):
    partner = factories.PartnerFactory()
    factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)
    member = factories.enrolled_member()
    at = timezone.now() - timedelta(days=1)
    purchase_record(member_id=member.pk, partner=partner, order_reference="BIG", amount=Decimal("3497.94"),
                    occurred_at=at, booked_at=at)
    compute_figures()
    client = Client()
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))  # a script failed
    page.on("console", lambda message: "Refused" in message.text and errors.append(message.text))  # CSP

    german = _charts(page, live_server, "de")
    revenue = next(chart for chart in german if chart["title"] == "EUR")
    assert revenue["x"] in ("Tag", "Day")  # the catalogue may be dropped by the test settings
    assert any("." in tick and tick.replace(".", "").isdigit() for tick in revenue["ticks"]), revenue["ticks"]
    assert all(chart["title"] for chart in german)
    enrolments = next(chart for chart in german if chart["title"] == "Members")
    assert all("," not in tick for tick in enrolments["ticks"])  # whole members only
    english = _charts(page, live_server, "en")
    revenue = next(chart for chart in english if chart["title"] == "EUR")
    assert any("," in tick and tick.replace(",", "").isdigit() for tick in revenue["ticks"]), revenue["ticks"]
    assert not errors
