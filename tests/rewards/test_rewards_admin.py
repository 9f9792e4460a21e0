"""The console for rewards, vouchers, stamp cards and cashback: fast lists, safe actions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rewards import codes
from rewards.ledger import points_adjust
from rewards.models import Redemption, Reward
from rewards.purchases import LineData, purchase_record
from rewards.vouchers import redemption_create, voucher_consume
from tests import factories


def give(member, points):
    points_adjust(member_id=member.pk, points=points, reason="Test", staff_user=None)


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


def add_vouchers(count: int) -> None:
    reward = factories.RewardFactory(points_cost=10)
    for _ in range(count):
        member = factories.enrolled_member()
        give(member, 10)
        redemption_create(member_id=member.pk, reward_id=reward.pk)


@pytest.mark.parametrize("model", ["reward", "redemption", "stampcardprogram", "stampcard", "cashbackprogram"])
def test_changelists_render_with_a_number_of_queries_that_does_not_grow_with_the_rows(
        admin_client, tiers, partner, base_rule, model):
    url = reverse(f"admin:rewards_{model}_changelist")

    def add_rows(count):
        add_vouchers(count)
        for _ in range(count):
            program = factories.StampCardProgramFactory(stamps_needed=1, category="")
            member = factories.enrolled_member()
            purchase_record(member_id=member.pk, partner=partner, order_reference=f"P{program.pk}",
                            amount=Decimal("5"), lines=[LineData(amount=Decimal("5"))])
        factories.CashbackProgramFactory(active=False)

    add_rows(2)
    few = queries_for(admin_client, url)
    add_rows(8)
    assert queries_for(admin_client, url) == few
    assert few <= 12


def test_the_catalogue_shows_stock_times_redeemed_and_points_spent(admin_client, member):
    give(member, 1000)
    reward = factories.RewardFactory(name_de="Gratis Kaffee", points_cost=150, stock=7)
    for _ in range(3):
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    cancelled = redemption_create(member_id=member.pk, reward_id=reward.pk)
    admin_client.post(reverse("admin:rewards_redemption_changelist"),
                      {"action": "cancel_vouchers", "_selected_action": [cancelled.pk]})
    response = admin_client.get(reverse("admin:rewards_reward_changelist"))
    row = response.context["cl"].result_list[0]
    assert (row.stock, row.redeemed, row.spent) == (4, 3, 450)


def test_voucher_search_finds_a_code_as_typed_and_a_customer_number(admin_client, member):
    give(member, 200)
    voucher, other = (redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
                      for _ in range(2))
    url = reverse("admin:rewards_redemption_changelist")
    typed = codes.format_code(voucher.code).lower().replace("0", "o")
    found = admin_client.get(url, {"q": typed}).context["cl"].result_list
    assert list(found) == [voucher]
    assert admin_client.get(url, {"q": voucher.code[:6]}).context["cl"].result_list.count() == 0  # no partial match
    by_member = admin_client.get(url, {"q": member.customer_number.lower()}).context["cl"].result_list
    assert set(by_member) == {voucher, other}


def test_the_cancel_action_refunds_unused_vouchers_and_reports_the_rest(admin_client, member, partner):
    give(member, 200)
    reward = factories.RewardFactory(points_cost=100)
    unused = redemption_create(member_id=member.pk, reward_id=reward.pk)
    used = redemption_create(member_id=member.pk, reward_id=reward.pk)
    voucher_consume(code=used.code, partner=partner)
    response = admin_client.post(reverse("admin:rewards_redemption_changelist"),
                                 {"action": "cancel_vouchers", "_selected_action": [unused.pk, used.pk]}, follow=True)
    texts = [str(message) for message in response.context["messages"]]
    assert any("1 voucher(s) cancelled" in text for text in texts)
    assert any("1 voucher(s) were used" in text for text in texts)
    member.refresh_from_db()
    assert member.points_balance == 100
    assert {r.pk: r.status for r in Redemption.objects.all()} == {unused.pk: "cancelled", used.pk: "used"}


def test_only_staff_with_the_cancel_permission_see_the_cancel_action(client, member):
    staff = factories.StaffUserFactory()
    staff.user_permissions.add(Permission.objects.get(codename="view_redemption"))
    client.force_login(staff)
    give(member, 100)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    url = reverse("admin:rewards_redemption_changelist")
    assert "cancel_vouchers" not in client.get(url).content.decode()
    client.post(url, {"action": "cancel_vouchers", "_selected_action": [voucher.pk]})
    voucher.refresh_from_db()
    assert voucher.status == Redemption.Status.ISSUED
    staff.user_permissions.add(Permission.objects.get(codename="cancel_redemption"))
    assert "cancel_vouchers" in client.get(url).content.decode()


def test_vouchers_and_stamp_cards_are_read_only_in_the_console(admin_client, member):
    give(member, 100)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    change = reverse("admin:rewards_redemption_change", args=[voucher.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="status"' not in page.content.decode()
    admin_client.post(change, {"status": "used"})
    voucher.refresh_from_db()
    assert voucher.status == Redemption.Status.ISSUED
    assert admin_client.get(reverse("admin:rewards_redemption_add")).status_code == 403
    assert admin_client.get(reverse("admin:rewards_stampcard_add")).status_code == 403


def reward_form(reward: Reward, **changes) -> dict:
    data = {
        "kind": reward.kind, "name_de": reward.name_de, "name_en": reward.name_en, "description_de": "",
        "description_en": "", "active": "on", "in_catalogue": "on", "points_cost": reward.points_cost,
        "value": reward.value or "", "currency": reward.currency, "limit_per_member": "", "min_tier": "",
        "valid_from_0": "", "valid_from_1": "", "valid_until_0": "", "valid_until_1": "",
        "voucher_valid_days": reward.voucher_valid_days, "terms_de": "", "terms_en": "", "stock_change": "0",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_restocking_in_the_console_adds_to_what_is_left_now(admin_client, member):
    give(member, 500)
    reward = factories.RewardFactory(stock=5, points_cost=100)
    change = reverse("admin:rewards_reward_change", args=[reward.pk])
    assert admin_client.get(change).status_code == 200  # the page staff look at says 5 ...
    redemption_create(member_id=member.pk, reward_id=reward.pk)  # ... while a member redeems one
    response = admin_client.post(change, reward_form(reward, stock_change="10", points_cost="120"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    reward.refresh_from_db()
    assert (reward.stock, reward.points_cost) == (14, 120)
    admin_client.post(change, reward_form(reward, unlimited_stock="on"))
    reward.refresh_from_db()
    assert reward.stock is None


def test_a_percent_voucher_needs_a_value_of_at_most_100(admin_client):
    reward = factories.RewardFactory(kind=Reward.Kind.PERCENT_VOUCHER, value=Decimal("10"), currency="")
    change = reverse("admin:rewards_reward_change", args=[reward.pk])
    response = admin_client.post(change, reward_form(reward, value="150"))
    assert response.status_code == 200 and "value" in response.context["adminform"].form.errors
    reward.refresh_from_db()
    assert reward.value == Decimal("10")


def test_a_new_reward_gets_its_stock_from_the_form(admin_client):
    data = reward_form(Reward(kind=Reward.Kind.FREE_PRODUCT, name_de="Gratis Croissant", name_en="", points_cost=80,
                              voucher_valid_days=30, currency=""), stock="25")
    data.pop("stock_change")
    response = admin_client.post(reverse("admin:rewards_reward_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Reward.objects.get(name_de="Gratis Croissant").stock == 25
