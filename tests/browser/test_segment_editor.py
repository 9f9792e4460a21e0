"""The segment editor in a real browser (#23): the audience counted while editing, only fitting
operators offered, and a save with the untouched blank row goes through."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from campaigns.models import Segment, SegmentCondition
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in_as_staff(page, live_server) -> None:
    client = Client()
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])


def test_editing_a_segment_in_the_browser(page, live_server, tiers):
    for country in ("AT", "AT", "AT", "DE"):
        factories.enrolled_member(country=country)
    segment = Segment.objects.create(name="Österreich")
    SegmentCondition.objects.create(segment=segment, field="country", operator="in", value="AT")
    _sign_in_as_staff(page, live_server)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(live_server.url + reverse("admin:campaigns_segment_change", args=[segment.pk]))

    live = page.locator('[data-testid="live-count"]')
    expect(live).to_contain_text("3 active members")
    page.locator("input[name='conditions-0-value']").fill("AT,DE")
    expect(live).to_contain_text("4 active members")  # counted while editing, nothing saved yet

    # The blank row offers only the operators of the field chosen in it.
    page.locator("select[name='conditions-1-field']").select_option("consent")
    operators = page.locator("select[name='conditions-1-operator'] option:not([hidden]):not([value=''])")
    expect(operators).to_have_count(2)
    page.locator("select[name='conditions-1-field']").select_option("")

    # Saving with the untouched blank row works.
    page.locator("input[name='conditions-0-value']").fill("AT")
    page.locator("button[name='_continue'], input[name='_continue']").first.click()
    expect(page.locator(".errornote, .errorlist")).to_have_count(0)
    assert list(segment.conditions.values_list("value", flat=True)) == ["AT"]
