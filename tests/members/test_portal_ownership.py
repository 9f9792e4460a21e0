"""A member sees only their own data: other members' objects are 404, lists never mix people."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from members.services import member_link_or_enrol
from rewards.ledger import points_adjust, points_credit
from tests import factories


def _portal_member(email: str):
    user = factories.UserFactory(email=email)
    return member_link_or_enrol(user=user, email=email)


@pytest.fixture
def anna(tiers):
    return _portal_member("anna@example.org")


@pytest.fixture
def bernd(tiers):
    member = _portal_member("bernd@example.org")
    points_credit(member_id=member.pk, points=777, reason="Bernds Bonus")
    return member


def test_member_a_cannot_open_member_bs_voucher(client, anna, bernd):
    voucher = factories.RedemptionFactory(member=bernd)
    client.force_login(anna.user)
    response = client.get(reverse("portal:voucher", args=[voucher.pk]))
    assert response.status_code == 404
    assert voucher.display_code not in response.content.decode()
    assert voucher.display_code not in client.get(reverse("portal:vouchers")).content.decode()


def test_member_a_never_sees_member_bs_activity(client, anna, bernd):
    client.force_login(anna.user)
    for url in (reverse("portal:activity"), reverse("portal:activity") + f"?member={bernd.pk}",
                reverse("portal:dashboard")):
        html = client.get(url).content.decode()
        assert "Bernds Bonus" not in html and "777" not in html


def test_member_a_cannot_export_member_bs_data(client, anna, bernd):
    client.force_login(anna.user)
    data = json.loads(client.get(reverse("portal:export") + f"?member={bernd.pk}").content)
    assert data["profile"]["email"] == "anna@example.org"
    assert data["ledger"] == []
    assert "bernd" not in json.dumps(data)


def test_a_voucher_id_that_does_not_exist_is_a_404_like_a_foreign_one(client, anna):
    client.force_login(anna.user)
    assert client.get(reverse("portal:voucher", args=[999_999])).status_code == 404


def test_a_reward_behind_a_tier_is_refused_at_redeem_even_by_a_direct_post(client, anna, tiers):
    points_adjust(member_id=anna.pk, points=5000, reason="Start", staff_user=None)  # not qualifying: no tier
    reward = factories.RewardFactory(points_cost=100, min_tier=tiers[3])
    client.force_login(anna.user)
    client.post(reverse("portal:redeem", args=[reward.pk]))
    assert not anna.redemptions.exists()
