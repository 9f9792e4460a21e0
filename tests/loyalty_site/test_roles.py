"""Staff roles: each group reaches what its job needs in the console, and nothing more."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from rewards.models import PointEntry
from rewards.purchases import purchase_record
from tests import factories


@pytest.fixture
def shopper(member, partner, base_rule):
    purchase_record(member_id=member.pk, partner=partner, order_reference="R-1", amount=Decimal("50"))
    return member


PAGES = {
    "members": lambda m: reverse("admin:members_member_change", args=[m.pk]),
    "ledger": lambda m: reverse("admin:rewards_pointentry_changelist"),
    "purchases": lambda m: reverse("admin:rewards_purchase_changelist"),
    "rules": lambda m: reverse("admin:rewards_earningrule_changelist"),
    "rewards": lambda m: reverse("admin:rewards_reward_changelist"),
    "add_rule": lambda m: reverse("admin:rewards_earningrule_add"),
    "users": lambda m: reverse("admin:auth_user_changelist"),
    "adjust": lambda m: reverse("admin:members_member_adjust_points", args=[m.pk]),
}

EXPECTED = {
    #                members ledger purchases rules rewards add_rule users adjust
    "Marketing":     (200,    403,   403,      200,  200,    200,     403,  403),
    "Support":       (200,    200,   200,      403,  200,    403,     403,  200),
    "Finance":       (200,    200,   200,      200,  200,    403,     403,  403),
    "Administrator": (200,    200,   200,      200,  200,    200,     200,  200),
}


@pytest.mark.parametrize("group_name", list(EXPECTED))
def test_each_role_reaches_exactly_its_pages(client, shopper, group_name):
    client.force_login(factories.staff_in(group_name))
    codes = tuple(client.get(url(shopper)).status_code for url in PAGES.values())
    assert codes == EXPECTED[group_name]


def test_support_adjustments_above_the_limit_need_an_administrator(client, shopper, settings):
    settings.LOYALTY_SUPPORT_ADJUST_LIMIT = 100
    client.force_login(factories.staff_in("Support"))
    url = reverse("admin:members_member_adjust_points", args=[shopper.pk])
    response = client.post(url, {"points": "101", "reason": "Kulanz"})
    assert response.status_code == 200  # the form again, with the error
    assert not PointEntry.objects.filter(kind=PointEntry.Kind.ADJUST).exists()
    assert client.post(url, {"points": "100", "reason": "Kulanz"}).status_code == 302

    client.force_login(factories.staff_in("Administrator"))
    assert client.post(url, {"points": "1000", "reason": "Großkulanz"}).status_code == 302
    assert PointEntry.objects.filter(kind=PointEntry.Kind.ADJUST).count() == 2


def test_member_accounts_never_reach_the_admin(client, member):
    user = factories.UserFactory(is_staff=False)
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("group_name", list(EXPECTED))
def test_every_console_list_follows_the_roles_permissions(client, shopper, group_name):
    """Every page of every model in the console: open exactly when the role may view the model."""
    from django.contrib import admin

    user = factories.staff_in(group_name)
    client.force_login(user)
    wrong = []
    for model in admin.site._registry:
        opts = model._meta
        may_view = user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}")
        status = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code
        if status != (200 if may_view else 403):
            wrong.append((opts.label, status, may_view))
    assert wrong == []
