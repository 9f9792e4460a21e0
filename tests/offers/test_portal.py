"""The member's coupons in the portal: the page, one-click activation (own only, CSRF, expired),
the dashboard card."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from members.models import Member
from members.services import member_link_or_enrol
from offers.models import MemberOffer
from tests import factories

pytestmark = pytest.mark.django_db


def en(name: str, *args) -> str:
    with translation.override("en"):
        return reverse(name, args=args)


@pytest.fixture
def portal_member(tiers):
    user = factories.UserFactory(email="erika@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    Member.objects.filter(pk=member.pk).update(first_name="Erika")
    member.refresh_from_db()
    return member


@pytest.fixture
def signed_in(client, portal_member):
    client.force_login(portal_member.user)
    return client


def test_the_page_lists_the_members_coupons_but_not_held_out_or_others(signed_in, portal_member):
    factories.MemberOfferFactory(member=portal_member, offer=factories.OfferFactory(
        name_en="Organic week", category="Bio", value="2.00"))
    factories.MemberOfferFactory(member=portal_member, offer=factories.OfferFactory(name_en="Secret"), holdout=True)
    factories.MemberOfferFactory(offer=factories.OfferFactory(name_en="Somebody else's"))
    html = signed_in.get(en("offers:portal")).content.decode()
    assert "Organic week" in html and "2× points" in html and "on products of the category Bio" in html
    assert "Secret" not in html and "Somebody else" not in html
    assert "Activate" in html


def test_activating_a_coupon_is_one_post(signed_in, portal_member):
    coupon = factories.MemberOfferFactory(member=portal_member)
    response = signed_in.post(en("offers:activate", coupon.pk), follow=True)
    assert response.redirect_chain[-1][0] == en("offers:portal")
    coupon.refresh_from_db()
    assert coupon.activated_at is not None
    assert "activated" in response.content.decode()
    first = coupon.activated_at
    signed_in.post(en("offers:activate", coupon.pk))  # again: nothing changes
    coupon.refresh_from_db()
    assert coupon.activated_at == first


def test_a_member_cannot_activate_another_members_or_a_held_out_coupon(signed_in, portal_member):
    other = factories.MemberOfferFactory()
    held_out = factories.MemberOfferFactory(member=portal_member, holdout=True)
    for coupon in (other, held_out):
        response = signed_in.post(en("offers:activate", coupon.pk), follow=True)
        assert "This coupon does not exist." in response.content.decode()
        coupon.refresh_from_db()
        assert coupon.activated_at is None


def test_an_expired_coupon_cannot_be_activated(signed_in, portal_member):
    coupon = factories.MemberOfferFactory(member=portal_member, offer=factories.OfferFactory(
        valid_from=timezone.now() - timedelta(days=5), valid_until=timezone.now() - timedelta(minutes=1)))
    response = signed_in.post(en("offers:activate", coupon.pk), follow=True)
    assert "it has expired" in response.content.decode()
    assert MemberOffer.objects.get(pk=coupon.pk).activated_at is None


def test_activation_needs_a_post_with_the_csrf_token(portal_member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(portal_member.user)
    coupon = factories.MemberOfferFactory(member=portal_member)
    assert client.post(reverse("offers:activate", args=[coupon.pk])).status_code == 403
    assert client.get(reverse("offers:activate", args=[coupon.pk])).status_code == 405
    assert MemberOffer.objects.get(pk=coupon.pk).activated_at is None


def test_the_page_needs_a_signed_in_member(client):
    response = client.get(reverse("offers:portal"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_dashboard_shows_the_coupons_card_and_the_navigation_links_the_page(signed_in, portal_member):
    factories.MemberOfferFactory(member=portal_member, offer=factories.OfferFactory(name_en="Store bonus",
                                                                                    effect="bonus", value=200))
    html = signed_in.get(en("portal:dashboard")).content.decode()
    assert "Your coupons" in html and "Store bonus" in html and "+200 bonus points" in html
    assert f'href="{en("offers:portal")}"' in html


def test_the_dashboard_without_coupons_shows_no_card(signed_in):
    assert "Your coupons" not in signed_in.get(en("portal:dashboard")).content.decode()


def test_the_page_shows_activated_and_used_states(signed_in, portal_member):
    activated = factories.activated_coupon(portal_member, name_en="Active one")
    used = factories.activated_coupon(portal_member, name_en="Used one")
    MemberOffer.objects.filter(pk=used.pk).update(uses=1)
    html = signed_in.get(en("offers:portal")).content.decode()
    assert "Activated: it applies by itself to your next matching purchase." in html
    assert "Used and expired" in html and activated.offer.name_en in html


def test_the_page_reads_a_constant_number_of_queries(signed_in, portal_member):
    for _ in range(3):
        factories.MemberOfferFactory(member=portal_member)
    signed_in.get(en("offers:portal"))
    with CaptureQueriesContext(connection) as few:
        signed_in.get(en("offers:portal"))
    for _ in range(5):
        factories.MemberOfferFactory(member=portal_member, offer=factories.OfferFactory(
            store=factories.StoreFactory()))
    with CaptureQueriesContext(connection) as many:
        signed_in.get(en("offers:portal"))
    assert len(many.captured_queries) == len(few.captured_queries)
