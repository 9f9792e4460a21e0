"""The campaign editor in a real browser (#23): a click in the placeholder picker inserts the
placeholder at the cursor of the variant's field."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import DESKTOP

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_placeholder_picker_inserts_at_the_cursor(page, live_server, sign_in, tiers):
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign, name="A", body_de="Hallo , schön dass Sie da sind.")
    sign_in(factories.UserFactory(is_staff=True, is_superuser=True))
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    body = page.locator("textarea[name='variants-0-body_de']")
    body.click()
    body.evaluate("field => field.setSelectionRange(6, 6)")  # after "Hallo "
    wrapper = page.locator(".placeholder-field").filter(has=body)
    wrapper.locator("summary").click()
    wrapper.get_by_role("button", name="First name").click()
    expect(body).to_have_value("Hallo {{ first_name }}, schön dass Sie da sind.")

    # Saved as typed, and the preview of the draft shows nothing broken.
    page.locator("button[name='_continue'], input[name='_continue']").first.click()
    expect(page.locator(".errornote, .errorlist")).to_have_count(0)
    assert campaign.variants.get().body_de == "Hallo {{ first_name }}, schön dass Sie da sind."
