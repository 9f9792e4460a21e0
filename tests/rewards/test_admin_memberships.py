"""The console sells VIP memberships and invites members into an invitation tier, through the
services; tier admin validates kind, fee and duration; lists stay free of N+1 queries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from members.models import Member, Tier, TierHistory
from rewards.models import Purchase, TierMembership
from rewards.tier_memberships import tier_membership_invite, tier_membership_sell
from tests import factories


@pytest.fixture
def vip(tiers):
    return factories.vip_tier()


@pytest.fixture
def ambassador(tiers):
    return factories.invitation_tier()


@pytest.fixture
def support(client, db):
    client.force_login(factories.staff_in("Support"))
    return client


@pytest.fixture
def marketing(client, db):
    client.force_login(factories.staff_in("Marketing"))
    return client


def test_support_sells_a_vip_membership_from_the_member_page(support, member, partner, vip):
    url = reverse("admin:members_member_sell_membership", args=[member.pk])
    assert support.get(url).status_code == 200
    response = support.post(url, {"tier": vip.pk, "partner": partner.pk, "order_reference": "RG-2026-17"})
    assert response.status_code == 302, response.content.decode()[:2000]
    membership = TierMembership.objects.get()
    assert (membership.member, membership.tier, membership.fee_purchase.order_reference) == (member, vip,
                                                                                           "RG-2026-17")
    assert membership.invited_by is not None  # who sold it
    assert Member.objects.get(pk=member.pk).tier == vip


def test_a_console_sale_without_a_reference_gets_one_and_a_renewal_follows_on(support, member, partner, vip):
    url = reverse("admin:members_member_sell_membership", args=[member.pk])
    support.post(url, {"tier": vip.pk, "partner": partner.pk})
    support.post(url, {"tier": vip.pk, "partner": partner.pk})
    first, renewal = TierMembership.objects.order_by("starts")
    assert first.fee_purchase.order_reference.startswith("VIP-")
    assert renewal.starts == first.ends + timedelta(days=1)


def test_a_store_of_another_partner_is_a_form_error(support, member, partner, vip):
    other_store = factories.StoreFactory(partner=factories.PartnerFactory(name="Fremd AG"), code="F9")
    response = support.post(reverse("admin:members_member_sell_membership", args=[member.pk]),
                            {"tier": vip.pk, "partner": partner.pk, "store": other_store.pk})
    assert response.status_code == 200 and "another partner" in response.content.decode()
    assert not Purchase.objects.exists()


def test_marketing_invites_a_member_until_an_end_date_with_a_reason(marketing, member, ambassador):
    url = reverse("admin:members_member_invite_to_tier", args=[member.pk])
    ends = timezone.localdate() + timedelta(days=60)
    response = marketing.post(url, {"tier": ambassador.pk, "ends": ends.isoformat(), "reason": "Markenbotschafterin"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.tier == ambassador
    change = member.tier_history.first()
    assert (change.cause, change.reason) == (TierHistory.Cause.INVITATION, "Markenbotschafterin")


def test_an_invitation_ending_today_or_without_reason_is_refused(marketing, member, ambassador):
    url = reverse("admin:members_member_invite_to_tier", args=[member.pk])
    response = marketing.post(url, {"tier": ambassador.pk, "ends": timezone.localdate().isoformat(), "reason": ""})
    assert response.status_code == 200
    form = response.context["form"]
    assert {"ends", "reason"} <= set(form.errors)
    assert not TierMembership.objects.exists()


def test_each_action_needs_its_permission(client, member, partner, vip, ambassador):
    client.force_login(factories.staff_in("Finance"))
    sell = reverse("admin:members_member_sell_membership", args=[member.pk])
    invite = reverse("admin:members_member_invite_to_tier", args=[member.pk])
    assert client.post(sell, {"tier": vip.pk, "partner": partner.pk}).status_code == 403
    assert client.post(invite, {"tier": ambassador.pk, "ends": "2099-01-01", "reason": "x"}).status_code == 403
    client.force_login(factories.staff_in("Marketing"))  # invites, but does not sell
    assert client.post(sell, {"tier": vip.pk, "partner": partner.pk}).status_code == 403
    assert not TierMembership.objects.exists()


def test_the_tier_admin_validates_kind_fee_and_duration(admin_client, tiers):
    url = reverse("admin:members_tier_add")
    base = {"name_de": "VIP", "name_en": "VIP", "rank": 10, "threshold_points": 0, "earn_multiplier": "1.00",
            "discount_percent": "0", "benefits_de": "", "benefits_en": ""}
    response = admin_client.post(url, {**base, "kind": "paid"})
    assert response.status_code == 200
    assert {"fee_amount", "fee_currency", "duration_months"} <= set(response.context["adminform"].form.errors)
    response = admin_client.post(url, {**base, "kind": "invitation", "fee_amount": "10", "threshold_points": 100})
    assert {"fee_amount", "threshold_points"} <= set(response.context["adminform"].form.errors)
    response = admin_client.post(url, {**base, "kind": "paid", "fee_amount": "99", "fee_currency": "EUR",
                                       "duration_months": 12})
    assert response.status_code == 302
    assert Tier.objects.get(rank=10).fee_amount == Decimal("99.00")
    listing = admin_client.get(reverse("admin:members_tier_changelist")).content.decode()
    assert "99" in listing


def _members_with_memberships(count, partner, vip, ambassador):
    for index in range(count):
        member = factories.enrolled_member()
        tier_membership_sell(member_id=member.pk, tier=vip, partner=partner, order_reference=f"N1-{member.pk}")
        tier_membership_invite(member_id=member.pk, tier=ambassador, reason=f"Grund {index}", staff_user=None,
                               ends=timezone.localdate() + timedelta(days=30))


def test_membership_lists_and_the_member_page_have_no_n_plus_one(admin_client, partner, vip, ambassador):
    urls = [reverse("admin:members_member_changelist") + "?membership=any",
            reverse("admin:rewards_tiermembership_changelist")]
    _members_with_memberships(2, partner, vip, ambassador)
    few = {}
    for url in urls:
        with CaptureQueriesContext(connection) as context:
            assert admin_client.get(url).status_code == 200
        few[url] = len(context)
    _members_with_memberships(8, partner, vip, ambassador)
    for url in urls:
        with CaptureQueriesContext(connection) as context:
            admin_client.get(url)
        assert len(context) <= few[url], url
    member = TierMembership.objects.first().member
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "Botschafter" in page and "N1-" in page and 'data-testid="memberships"' in page


def test_the_membership_filter_finds_holders_by_source(admin_client, member, partner, vip, ambassador):
    holder = factories.enrolled_member()
    tier_membership_sell(member_id=holder.pk, tier=vip, partner=partner, order_reference="F-1")
    url = reverse("admin:members_member_changelist")
    paid = admin_client.get(url, {"membership": "paid"}).context["cl"].result_list
    none = admin_client.get(url, {"membership": "none"}).context["cl"].result_list
    invited = admin_client.get(url, {"membership": "invitation"}).context["cl"].result_list
    assert [row.pk for row in paid] == [holder.pk]
    assert member.pk in [row.pk for row in none] and holder.pk not in [row.pk for row in none]
    assert list(invited) == []
