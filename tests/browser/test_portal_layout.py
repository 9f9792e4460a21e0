"""What a member would notice on a phone: text that runs into other text."""

from __future__ import annotations

import pytest

from members.services import member_link_or_enrol
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


TEXT_BOX = ("el => { const r = document.createRange(); r.selectNodeContents(el); "
            "const b = r.getBoundingClientRect(); return {x: b.x, y: b.y, width: b.width, height: b.height}; }")


def _text_stays_in_its_box(locator) -> bool:
    """The text itself (a range over it), not the box: an overflowing number paints past its box."""
    text, box = locator.evaluate(TEXT_BOX), locator.bounding_box()
    return text["x"] >= box["x"] - 0.5 and text["x"] + text["width"] <= box["x"] + box["width"] + 0.5


@pytest.mark.parametrize("width", [320, 390, 1280])
def test_card_and_customer_numbers_never_run_into_each_other(page, live_server, sign_in, width):
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    member = member_link_or_enrol(user=user, email="erika@example.org")
    sign_in(user)
    page.set_viewport_size({"width": width, "height": 844})
    page.goto(live_server.url + "/konto/karte/")

    numbers = page.locator(".facts dd")
    card, customer = numbers.nth(0), numbers.nth(1)
    assert card.inner_text() == member.card_number and customer.inner_text() == member.customer_number
    assert _text_stays_in_its_box(card) and _text_stays_in_its_box(customer)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing sideways
