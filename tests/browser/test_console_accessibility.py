"""The console's main pages pass axe-core (no critical or serious violation) at desktop width,
and its navigation is grouped by what staff do (#23)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client
from django.urls import reverse

from rewards.demo import seed_catalogue_basics
from rewards.purchases import purchase_record
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLOCKING = {"critical", "serious"}


def _sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])


def _blocking_violations(page) -> list[str]:
    results = Axe().run(page)
    return [f"{violation['id']} ({violation['impact']}): {node['target']}"
            for violation in results.response["violations"] if violation["impact"] in BLOCKING
            for node in violation["nodes"]]


def test_the_main_console_pages_pass_axe_core(page, live_server, tiers):
    partner, stores = seed_catalogue_basics()
    member = factories.enrolled_member(first_name="Erika", last_name="Beispiel")
    purchase_record(member_id=member.pk, partner=partner, order_reference="BON-1", amount=Decimal("25.00"),
                    store=stores[0])
    _sign_in(page, live_server, factories.UserFactory(is_staff=True, is_superuser=True))
    page.set_viewport_size({"width": 1280, "height": 800})
    pages = ["admin:index", "admin:members_member_changelist", ("admin:members_member_change", member.pk),
             "admin:rewards_earningrule_add", "admin:rewards_reward_changelist", "admin:rewards_purchase_changelist",
             "admin:campaigns_segment_add", "admin:campaigns_campaign_add", "admin:campaigns_campaign_changelist",
             "admin:feedback_complaint_changelist", "admin:transfers_importjob_add",
             "admin:partners_partner_changelist"]
    found = {}
    for name in pages:
        url = reverse(name[0], args=[name[1]]) if isinstance(name, tuple) else reverse(name)
        page.goto(live_server.url + url)
        violations = _blocking_violations(page)
        if violations:
            found[url] = violations
    assert found == {}, "\n".join(f"{url}: {v}" for url, vs in found.items() for v in vs)


def test_the_navigation_groups_what_staff_do_and_hides_the_scheduler_from_marketing(page, live_server, db):
    from django.contrib.auth.models import Group
    marketing = factories.UserFactory(is_staff=True)
    marketing.groups.add(Group.objects.get(name="Marketing"))
    _sign_in(page, live_server, marketing)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(live_server.url + reverse("admin:index"))
    sidebar = page.locator("#nav-sidebar, nav").first.inner_text()
    for group in ("Programme", "Members", "Campaigns"):
        assert group in sidebar
    assert "Periodic tasks" not in page.content()
    assert "Segments" in sidebar and "API keys" not in sidebar
