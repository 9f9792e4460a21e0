"""What a member would notice on a phone: text that runs into other text."""

from __future__ import annotations

from pathlib import Path

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


def test_the_phone_navigation_shows_that_it_scrolls(page, live_server, sign_in):
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    member_link_or_enrol(user=user, email="erika@example.org")
    sign_in(user)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/konto/")
    navigation = page.locator(".main-nav ul")
    overflows = navigation.evaluate("el => el.scrollWidth > el.clientWidth")
    if overflows:  # then the member sees it: a scrollbar and an edge where more items wait
        style = navigation.evaluate("el => { const s = getComputedStyle(el); "
                                    "return {scrollbar: s.scrollbarWidth, background: s.backgroundImage}; }")
        assert style["scrollbar"] != "none"
        assert "radial-gradient" in style["background"]
        navigation.evaluate("el => el.scrollTo({left: el.scrollWidth})")
        last = page.locator(".main-nav li").last
        box = last.bounding_box()
        assert box["x"] + box["width"] <= 390 + 0.5  # the last item can be scrolled into view
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the page itself does not


# Every visible text run on the page: its line boxes (a range over the text node), and the box of the
# nearest element that clips (overflow other than visible). Reports text painted outside that box,
# past the viewport, or over another element's text.
TEXT_COLLISIONS = (Path(__file__).parent / "text_collisions.js").read_text()


@pytest.mark.parametrize("width", [320, 390, 1280])
@pytest.mark.parametrize(("path", "full_screen"), [("/konto/karte/", False), ("/konto/karte/", True),
                                                   ("/konto/profil/", False)])
def test_card_and_profile_pages_have_no_overlapping_or_clipped_text(page, live_server, sign_in, path, full_screen,
                                                                     width):
    factories.tier_ladder()
    email = "maximiliane.mustermann-schulze@beispiel-unternehmen.example.org"  # long words wrap or overflow
    user = factories.UserFactory(email=email, first_name="Maximiliane", last_name="Mustermann-Schulze")
    member_link_or_enrol(user=user, email=email)
    sign_in(user)
    page.set_viewport_size({"width": width, "height": 844})
    page.goto(live_server.url + path)
    page.wait_for_load_state("networkidle")
    if full_screen:
        page.locator("[data-fullscreen-open]").click()
        page.get_by_role("dialog").wait_for()
    problems = page.evaluate(TEXT_COLLISIONS)
    assert problems == [], "\n".join(problems)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_text_check_notices_text_running_into_its_neighbour(page, live_server, sign_in):
    """The check itself: numbers that may not wrap, in columns too narrow for them, are reported."""
    page.set_content('<div style="display:grid;grid-template-columns:60px 60px;overflow:hidden;width:120px">'
                     '<span style="white-space:nowrap">12345678901234567890</span><span>Kunde 4711</span></div>')
    assert any(problem.startswith(("overlap", "clipped")) for problem in page.evaluate(TEXT_COLLISIONS))
