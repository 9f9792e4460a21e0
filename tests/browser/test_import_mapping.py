"""The column-mapping step of an import in a real browser (#23), at desktop width: a customer list
with headings the importer doesn't know by name is mapped, the dry run then warns about a postal
code that doesn't fit the country, and the import takes the customer anyway."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from members.models import Member
from tests import factories
from tests.browser.conftest import DESKTOP
from transfers.models import ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = (b"Kd.-Kennung;Mail-Adresse;Vorname;Kunde seit;PLZ;Umsatz 12 Monate\n"
        b"K-1;anna@example.de;Anna;01.02.2015;1234X;99,50\n"
        b"K-2;ben@example.de;Ben;03.04.2016;80331;10,00\n")


def test_the_console_maps_unknown_headings_warns_about_the_postal_code_and_imports(page, live_server, sign_in,
                                                                                   screenshot):
    factories.tier_ladder()
    sign_in(factories.UserFactory(is_staff=True, is_superuser=True))
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + reverse("admin:transfers_importjob_add"))
    page.locator('input[name="file"]').set_input_files(
        {"name": "kunden_alt.csv", "mimeType": "text/csv", "buffer": LIST})
    page.locator('form[enctype="multipart/form-data"] button[type="submit"]').click()

    # No column for the customer number or e-mail by name: the dry run fails and the mapping is open.
    expect(page.locator('[data-testid="import-job"]')).to_have_attribute("data-status", "failed")
    mapping = page.locator('[data-testid="mapping"]')
    expect(mapping.locator("details")).to_have_attribute("open", "")
    expect(page.locator("#column-3")).to_have_value("joined_at")  # Kunde seit
    expect(page.locator("#column-4")).to_have_value("postal_code")  # PLZ
    expect(page.locator("#column-5")).to_have_value("")  # Umsatz 12 Monate: not a field of the import
    screenshot(page, "console-import-mapping")

    # Two headings on one field: refused with the reason, nothing saved.
    page.select_option("#column-0", "email")
    page.select_option("#column-1", "email")
    page.locator('[data-testid="map-columns"]').click()
    expect(page.locator('[data-testid="mapping-error"]')).to_contain_text("are both mapped to")

    page.select_option("#column-0", "customer_number")
    page.locator('[data-testid="map-columns"]').click()
    expect(page.locator('[data-testid="import-job"]')).to_have_attribute("data-status", "analysed")
    warnings = page.locator('[data-testid="warnings"]')
    expect(warnings).to_contain_text("1234X")
    expect(warnings).to_contain_text("PLZ")
    expect(page.locator('[data-testid="errors"]')).to_have_count(0)
    screenshot(page, "console-import-dry-run-warning")

    page.locator('[data-testid="confirm"]').click()
    expect(page.locator('[data-testid="import-job"]')).to_have_attribute("data-status", "done")
    expect(page.locator('[data-testid="warnings"]')).to_contain_text("1234X")
    anna = Member.objects.get(customer_number="K-1")
    assert (anna.email, anna.postal_code) == ("anna@example.de", "1234X")
    assert timezone.localtime(anna.joined_at).date().isoformat() == "2015-02-01"
    assert ImportJob.objects.get().options["mapping"][:2] == ["customer_number", "email"]
