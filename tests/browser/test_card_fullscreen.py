"""The card at the till: full screen, codes large enough for a scanner, closed again with Escape.
(Buttons by their data attribute: the test server has no project catalogue, the browser asks for German.)"""

from __future__ import annotations

import pytest

from members.services import member_link_or_enrol
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The barcode's SVG is in module units (viewBox width = modules + quiet zones): rendered px per module.
MODULE_WIDTH = ("el => { const svg = el.querySelector('svg'); "
                "return svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; }")


def _open_card_page(page, live_server, sign_in, *, width: int = 390, height: int = 844):
    factories.tier_ladder()
    user = factories.UserFactory(email="erika@example.org")
    member = member_link_or_enrol(user=user, email="erika@example.org")
    sign_in(user)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(live_server.url + "/konto/karte/")
    return member


def test_full_screen_shows_the_barcode_across_the_phone_and_a_large_qr_code(page, live_server, sign_in):
    member = _open_card_page(page, live_server, sign_in)
    page.locator("[data-fullscreen-open]").click()

    overlay = page.get_by_role("dialog")
    overlay.wait_for()
    box = overlay.bounding_box()
    assert box["x"] <= 0.5 and box["y"] <= 0.5 and box["width"] >= 389.5 and box["height"] >= 843.5
    assert overlay.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 255, 255)"

    barcode = page.get_by_test_id("fullscreen-barcode")
    barcode_box = barcode.locator("svg").bounding_box()
    assert barcode_box["width"] >= 0.8 * 390
    assert barcode.evaluate(MODULE_WIDTH) >= 2
    assert barcode_box["x"] >= 0 and barcode_box["x"] + barcode_box["width"] <= 390  # quiet zones on screen

    qr_box = page.get_by_test_id("fullscreen-qr").locator("svg").bounding_box()
    assert min(qr_box["width"], qr_box["height"]) >= 0.6 * 390
    assert qr_box["y"] + qr_box["height"] <= 844  # no scrolling at the till

    number = page.get_by_test_id("fullscreen-number")
    assert number.inner_text().replace(" ", "").endswith(member.card_number)
    assert float(number.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) >= 24


def test_escape_closes_the_full_screen_card(page, live_server, sign_in):
    _open_card_page(page, live_server, sign_in)
    open_button = page.locator("[data-fullscreen-open]")
    open_button.click()
    page.get_by_role("dialog").wait_for()

    page.keyboard.press("Escape")

    page.get_by_role("dialog").wait_for(state="hidden")
    assert page.evaluate("document.fullscreenElement") is None
    assert open_button.evaluate("el => el === document.activeElement")  # focus back where the member was


def test_the_close_button_closes_the_full_screen_card(page, live_server, sign_in):
    _open_card_page(page, live_server, sign_in)
    page.locator("[data-fullscreen-open]").click()
    page.locator("[data-fullscreen-close]").click()
    page.get_by_role("dialog").wait_for(state="hidden")
    assert page.evaluate("getComputedStyle(document.documentElement).overflow") != "hidden"


def test_full_screen_fits_a_desktop_screen_too(page, live_server, sign_in):
    _open_card_page(page, live_server, sign_in, width=1280, height=800)
    page.locator("[data-fullscreen-open]").click()
    barcode = page.get_by_test_id("fullscreen-barcode")
    assert barcode.locator("svg").bounding_box()["width"] >= 0.8 * 1280
    qr_box = page.get_by_test_id("fullscreen-qr").locator("svg").bounding_box()
    assert qr_box["width"] >= 0.6 * 800 - 0.5 and qr_box["y"] + qr_box["height"] <= 800
