"""Paid and invitation tiers in a real browser: the portal's tier card shows the VIP membership
and its end (phone and desktop), and staff invite a member into an invitation tier from the
member's console page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from members.models import Member, TierHistory
from members.services import member_link_or_enrol
from rewards.models import TierMembership
from rewards.tier_memberships import tier_membership_sell
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_portal_shows_my_vip_membership(page, live_server, sign_in, screenshot, viewport):
    from allauth.account.models import EmailAddress

    factories.tier_ladder()
    vip = factories.vip_tier(benefits_de="Doppelte Punkte und VIP-Abende", benefits_en="Double points")
    partner = factories.PartnerFactory(name="Café Lindner")
    user = factories.UserFactory(email="vera@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    membership = tier_membership_sell(member_id=member.pk, tier=vip, partner=partner,
                                      order_reference="VIP-WEB-1").membership
    sign_in(user)
    page.set_viewport_size(viewport)

    page.goto(live_server.url + reverse("portal:dashboard"))
    expect(page.get_by_test_id("tier")).to_have_text("VIP")
    card = page.get_by_test_id("membership")
    expect(card).to_be_visible()
    expect(card).to_contain_text(str(membership.ends.year))
    # The card fits the screen: nothing scrolls sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    if viewport == PHONE:
        screenshot(page, "portal-vip-membership")


def test_staff_invite_a_member_into_an_invitation_tier_from_the_console(page, live_server, sign_in, screenshot):
    factories.tier_ladder()
    ambassador = factories.invitation_tier()
    member = factories.enrolled_member(first_name="Jonas", last_name="Beispiel")
    sign_in(factories.staff_in("Marketing"))
    page.set_viewport_size(DESKTOP)

    page.goto(live_server.url + reverse("admin:members_member_change", args=[member.pk]))
    page.get_by_role("link", name="Invite to a tier").first.click()
    page.wait_for_url("**/invite-to-tier/")
    page.get_by_label("Invitation tier").select_option(str(ambassador.pk))
    ends = timezone.localdate() + timedelta(days=90)
    page.get_by_label("Until").fill(ends.isoformat())
    page.get_by_label("Reason").fill("Markenbotschafter Frühjahr")
    page.locator("form:has(#id_reason) button[type=submit]").click()  # "Save" in the admin's language

    page.wait_for_url(f"**/members/member/{member.pk}/change/")
    expect(page.get_by_text("Invited to Botschafter").first).to_be_visible()  # the console speaks German
    expect(page.get_by_text("Markenbotschafter Frühjahr").first).to_be_visible()  # the memberships inline
    screenshot(page, "console-invite-to-tier")
    member = Member.objects.select_related("tier").get(pk=member.pk)
    assert member.tier == ambassador
    assert TierMembership.objects.get().ends == ends
    assert member.tier_history.first().cause == TierHistory.Cause.INVITATION
