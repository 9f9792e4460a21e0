"""Every portal page passes axe-core with no critical or serious violation, on a phone and on a
desktop (#23): the pages a member reaches from the navigation, with data on them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import NoReverseMatch, reverse

from members.services import member_link_or_enrol
from rewards.demo import seed_catalogue_basics
from rewards.purchases import LineData, purchase_record
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLOCKING = {"critical", "serious"}
PAGES = ["portal:home", "portal:dashboard", "portal:card", "portal:activity", "portal:rewards", "portal:vouchers",
         "portal:profile", "portal:privacy", "portal:terms", "referrals:portal", "feedback:portal",
         "engagement:portal", "offers:portal", "raffles:portal", "portal:donations"]


def _blocking(page) -> list[str]:
    results = Axe().run(page)
    return [f"{violation['id']} ({violation['impact']}): {node['target']}"
            for violation in results.response["violations"] if violation["impact"] in BLOCKING
            for node in violation["nodes"]]


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}],
                         ids=["phone", "desktop"])
def test_every_portal_page_passes_axe_core(page, live_server, sign_in, viewport):
    factories.tier_ladder()
    partner, stores = seed_catalogue_basics()
    user = factories.UserFactory(email="erika@example.org")
    member = member_link_or_enrol(user=user, email="erika@example.org")
    purchase_record(member_id=member.pk, partner=partner, order_reference="BON-1", amount=Decimal("48.90"),
                    store=stores[0], lines=[LineData(amount=Decimal("48.90"), category="Kaffee")])
    sign_in(user)
    page.set_viewport_size(viewport)
    found = {}
    for name in PAGES:
        try:
            url = reverse(name)
        except NoReverseMatch:  # a page of a feature this checkout does not have
            continue
        page.goto(live_server.url + url)
        if violations := _blocking(page):
            found[url] = violations
    assert found == {}, "\n".join(f"{url}: {v}" for url, vs in found.items() for v in vs)
