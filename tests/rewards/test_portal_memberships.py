"""The portal shows the member's own VIP or invitation membership and its end, and the terms list
the paid tier with its fee."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone, translation

from members.services import member_link_or_enrol
from members.templatetags.portal import member_date
from rewards.tier_memberships import tier_membership_invite, tier_membership_sell
from tests import factories
from tests.rewards.test_portal_pages import en


@pytest.fixture
def vip(tiers):
    return factories.vip_tier(benefits_en="Free delivery and a lounge")


@pytest.fixture
def portal_member(tiers):
    user = factories.UserFactory(email="vera@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return member_link_or_enrol(user=user, email=user.email)


@pytest.fixture
def signed_in(client, portal_member):
    client.force_login(portal_member.user)
    return client


def test_the_dashboard_shows_my_vip_membership_and_its_end(signed_in, portal_member, partner, vip):
    first = tier_membership_sell(member_id=portal_member.pk, tier=vip, partner=partner,
                                 order_reference="VIP-1").membership
    renewal = tier_membership_sell(member_id=portal_member.pk, tier=vip, partner=partner,
                                   order_reference="VIP-2").membership
    assert renewal.starts == first.ends + timedelta(days=1)
    html = signed_in.get(en("portal:dashboard")).content.decode()
    assert 'data-testid="tier">VIP<' in html
    with translation.override("en"):  # the renewal's end: renewed early, the membership runs on
        assert f"Your VIP membership runs until {member_date(renewal.ends)}." in html
    assert "Free delivery and a lounge" in html


def test_the_dashboard_says_by_invitation_until(signed_in, portal_member, tiers):
    ambassador = factories.invitation_tier()
    ends = timezone.localdate() + timedelta(days=45)
    tier_membership_invite(member_id=portal_member.pk, tier=ambassador, ends=ends, reason="Presse", staff_user=None)
    html = signed_in.get(en("portal:dashboard")).content.decode()
    assert "Ambassador by invitation until" in html and str(ends.year) in html
    assert "Presse" not in html  # staff's reason is not the member's to read


def test_another_members_membership_never_shows(signed_in, portal_member, partner, vip):
    other = factories.enrolled_member()
    tier_membership_sell(member_id=other.pk, tier=vip, partner=partner, order_reference="VIP-OTHER")
    html = signed_in.get(en("portal:dashboard")).content.decode()
    assert 'data-testid="membership"' not in html and 'data-testid="tier">Basic<' in html


def test_the_terms_list_the_paid_tier_with_its_fee(client, tiers, vip):
    factories.invitation_tier()
    html = client.get(en("portal:terms")).content.decode()
    assert 'data-testid="membership-tiers"' in html
    assert "99.00 EUR for 12 months" in html and "by invitation" in html
    assert "earns no points" in html
