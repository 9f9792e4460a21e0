"""Rewards and vouchers: redeeming, cancelling, expiry, tills consuming codes, stamp cards, cashback."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from loyalty_site.errors import (
    InsufficientPoints,
    RewardUnavailable,
    VoucherInvalid,
    VoucherNotCancellable,
    VoucherRateLimited,
)
from rewards import codes
from rewards.models import PointEntry, Redemption, Reward, StampCard
from rewards.services import LineData, points_adjust, purchase_record
from rewards.vouchers import (
    FAILURE_LIMIT,
    catalogue_for,
    member_discount_percent,
    redemption_cancel,
    redemption_create,
    redemptions_expire_due,
    voucher_consume,
    voucher_validate,
)
from tests import factories
from tests.test_ledger_concurrency import run_in_threads


def give(member, points):
    points_adjust(member_id=member.pk, points=points, reason="Test", staff_user=None)
    member.refresh_from_db()


# --- Codes -------------------------------------------------------------------------------------

def test_codes_are_long_random_and_carry_a_check_character():
    generated = {codes.generate_code() for _ in range(2000)}
    assert len(generated) == 2000
    code = generated.pop()
    assert len(code) == 14 and set(code) <= set(codes.ALPHABET)
    assert codes.normalize(codes.format_code(code).lower()) == code
    assert codes.normalize(code.replace("0", "O").replace("1", "I")) == code
    typo = code[:5] + ("A" if code[5] != "A" else "B") + code[6:]
    assert codes.normalize(typo) is None
    assert codes.normalize(code[1] + code[0] + code[2:]) in (None, code) or code[0] == code[1]


# --- Redeeming ---------------------------------------------------------------------------------

def test_redeeming_takes_points_and_stock_and_issues_a_voucher(member):
    give(member, 300)
    reward = factories.RewardFactory(points_cost=120, stock=5)
    voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)
    member.refresh_from_db()
    reward.refresh_from_db()
    assert (member.points_balance, reward.stock) == (180, 4)
    assert voucher.status == Redemption.Status.ISSUED and voucher.points == 120
    assert voucher.expires_at > timezone.now() + timedelta(days=89)
    entry = PointEntry.objects.get(member=member, kind=PointEntry.Kind.REDEEM)
    assert (entry.points, entry.reference) == (-120, voucher.code)


def test_redeeming_without_enough_points_changes_nothing(member):
    give(member, 99)
    reward = factories.RewardFactory(points_cost=100, stock=1)
    with pytest.raises(InsufficientPoints):
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    reward.refresh_from_db()
    assert reward.stock == 1 and not Redemption.objects.exists()


def test_per_member_limit_minimum_tier_and_validity_window(member, tiers):
    give(member, 10_000)
    limited = factories.RewardFactory(limit_per_member=1)
    redemption_create(member_id=member.pk, reward_id=limited.pk)
    with pytest.raises(RewardUnavailable):
        redemption_create(member_id=member.pk, reward_id=limited.pk)

    gold_only = factories.RewardFactory(min_tier=tiers[2])
    with pytest.raises(RewardUnavailable, match="Gold"):
        redemption_create(member_id=member.pk, reward_id=gold_only.pk)

    later = factories.RewardFactory(valid_from=timezone.now() + timedelta(days=1))
    over = factories.RewardFactory(valid_until=timezone.now() - timedelta(days=1))
    inactive = factories.RewardFactory(active=False)
    for reward in (later, over, inactive):
        with pytest.raises(RewardUnavailable):
            redemption_create(member_id=member.pk, reward_id=reward.pk)


def test_cancelled_vouchers_do_not_count_against_the_limit(member):
    give(member, 1000)
    reward = factories.RewardFactory(limit_per_member=1)
    first = redemption_create(member_id=member.pk, reward_id=reward.pk)
    redemption_cancel(redemption_id=first.pk)
    redemption_create(member_id=member.pk, reward_id=reward.pk)


def test_cancel_refunds_points_and_stock_once(member):
    give(member, 100)
    reward = factories.RewardFactory(points_cost=100, stock=1)
    voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)
    redemption_cancel(redemption_id=voucher.pk)
    member.refresh_from_db()
    reward.refresh_from_db()
    assert (member.points_balance, reward.stock) == (100, 1)
    with pytest.raises(VoucherNotCancellable):
        redemption_cancel(redemption_id=voucher.pk)
    member.refresh_from_db()
    assert member.points_balance == 100


def test_a_used_voucher_cannot_be_cancelled(member, partner):
    give(member, 100)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    voucher_consume(code=voucher.code, partner=partner)
    with pytest.raises(VoucherNotCancellable):
        redemption_cancel(redemption_id=voucher.pk)


@pytest.mark.parametrize("refund", [False, True])
def test_expired_vouchers_are_marked_and_refunded_only_if_configured(member, refund):
    give(member, 100)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    with override_settings(LOYALTY_REFUND_EXPIRED_VOUCHERS=refund):
        assert redemptions_expire_due() == 0
        assert redemptions_expire_due(now=voucher.expires_at + timedelta(seconds=1)) == 1
        assert redemptions_expire_due(now=voucher.expires_at + timedelta(days=1)) == 0
    voucher.refresh_from_db()
    member.refresh_from_db()
    assert voucher.status == Redemption.Status.EXPIRED
    assert member.points_balance == (100 if refund else 0)


# --- Tills ---------------------------------------------------------------------------------------

def test_validate_and_consume_a_code_once(member, partner):
    give(member, 100)
    store = factories.StoreFactory(partner=partner)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    typed = codes.format_code(voucher.code).lower()
    assert voucher_validate(code=typed, partner=partner).pk == voucher.pk
    used = voucher_consume(code=typed, partner=partner, store=store)
    assert (used.status, used.used_by_partner, used.used_at_store) == (Redemption.Status.USED, partner, store)
    with pytest.raises(VoucherInvalid):
        voucher_consume(code=typed, partner=partner, store=store)


def test_unknown_used_expired_and_future_codes_look_the_same(member, partner):
    give(member, 500)
    reward = factories.RewardFactory()
    used = redemption_create(member_id=member.pk, reward_id=reward.pk)
    voucher_consume(code=used.code, partner=partner)
    expired = factories.RedemptionFactory(member=member, reward=reward, expires_at=timezone.now() - timedelta(days=1))
    future = factories.RedemptionFactory(member=member, reward=reward, issued_at=timezone.now() + timedelta(days=1))
    messages = set()
    for code in ["NOPE", codes.generate_code(), used.code, expired.code, future.code]:
        with pytest.raises(VoucherInvalid) as error:
            voucher_validate(code=code, partner=partner)
        messages.add((error.value.code, str(error.value)))
    assert len(messages) == 1


def test_repeated_invalid_codes_are_rate_limited_per_partner(partner, db):
    for _ in range(FAILURE_LIMIT):
        with pytest.raises(VoucherInvalid):
            voucher_validate(code=codes.generate_code(), partner=partner)
    with pytest.raises(VoucherRateLimited):
        voucher_validate(code=codes.generate_code(), partner=partner)
    other = factories.PartnerFactory()
    with pytest.raises(VoucherInvalid):  # another partner is not blocked
        voucher_validate(code=codes.generate_code(), partner=other)


def test_member_discount_is_the_tier_discount(member, tiers):
    assert member_discount_percent(member) == Decimal("0")
    member.tier = tiers[2]
    assert member_discount_percent(member) == Decimal("5")


def test_catalogue_lists_what_the_member_can_afford_first(member, tiers):
    give(member, 300)
    cheap = factories.RewardFactory(points_cost=100)
    dear = factories.RewardFactory(points_cost=1000)
    gold = factories.RewardFactory(points_cost=50, min_tier=tiers[2])
    rows = catalogue_for(member)
    assert [reward for reward, _ in rows] == [cheap, gold, dear]
    assert rows[0][1] is None and "Gold" in rows[1][1] and "700" in rows[2][1]


# --- Stamp cards and cashback ------------------------------------------------------------------

def test_a_full_stamp_card_issues_its_reward_and_starts_a_new_card(member, partner, base_rule):
    program = factories.StampCardProgramFactory(stamps_needed=3, category="Kaffee", mode="item")
    coffee = [LineData(amount=Decimal("9"), category="Kaffee", quantity=2)]
    purchase_record(member_id=member.pk, partner=partner, order_reference="S1", amount=Decimal("9"), lines=coffee)
    card = StampCard.objects.get(member=member, program=program)
    assert (card.stamps, card.completed_at) == (2, None)
    purchase_record(member_id=member.pk, partner=partner, order_reference="S2", amount=Decimal("9"), lines=coffee)
    full, fresh = StampCard.objects.filter(member=member).order_by("pk")
    assert full.completed_at is not None and full.redemption.reward == program.reward
    assert full.redemption.points == 0
    assert (fresh.stamps, fresh.completed_at) == (1, None)  # the extra stamp moved over
    # A replayed purchase stamps nothing more; a purchase without coffee neither.
    purchase_record(member_id=member.pk, partner=partner, order_reference="S2", amount=Decimal("9"), lines=coffee)
    purchase_record(member_id=member.pk, partner=partner, order_reference="S3", amount=Decimal("9"),
                    lines=[LineData(amount=Decimal("9"), category="Wein")])
    fresh.refresh_from_db()
    assert fresh.stamps == 1
    assert Redemption.objects.filter(member=member).count() == 1


def test_cashback_turns_points_into_a_voucher_and_tells_the_member(member, partner, base_rule,
                                                                  django_capture_on_commit_callbacks):
    program = factories.CashbackProgramFactory(threshold_points=1000, reward__points_cost=500)
    with django_capture_on_commit_callbacks(execute=True):
        purchase_record(member_id=member.pk, partner=partner, order_reference="C1", amount=Decimal("999"))
    assert not Redemption.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        purchase_record(member_id=member.pk, partner=partner, order_reference="C2", amount=Decimal("600"))
    member.refresh_from_db()
    voucher = Redemption.objects.filter(member=member).first()
    # 1599 points ≥ 1000: one voucher of 500 → 1099, still ≥ 1000: another → 599
    assert Redemption.objects.filter(member=member, reward=program.reward).count() == 2
    assert member.points_balance == 599 and voucher.source == Redemption.Source.CASHBACK
    assert len(mail.outbox) == 1 and member.email in mail.outbox[0].to


# --- Races ---------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_fifty_members_racing_for_the_last_unit_get_exactly_one_voucher():
    factories.tier_ladder()
    reward = factories.RewardFactory(points_cost=100, stock=1)
    members = [factories.enrolled_member() for _ in range(50)]
    for member in members:
        points_adjust(member_id=member.pk, points=150, reason="Race", staff_user=None)

    outcomes = run_in_threads(50, lambda index: redemption_create(member_id=members[index].pk, reward_id=reward.pk))
    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(outcome is None or isinstance(outcome, RewardUnavailable) for outcome in outcomes)
    reward.refresh_from_db()
    assert reward.stock == 0
    assert Redemption.objects.count() == 1
    member_model = type(members[0])
    balances = sorted(member_model.objects.filter(pk__in=[m.pk for m in members]).values_list("points_balance",
                                                                                               flat=True))
    assert balances == [50] + [150] * 49


@pytest.mark.django_db(transaction=True)
def test_two_tills_consuming_one_code_at_once_use_it_once():
    factories.tier_ladder()
    partner = factories.PartnerFactory()
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=100, reason="Race", staff_user=None)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    for _ in range(3):  # a few rounds make a real overlap near certain
        outcomes = run_in_threads(2, lambda index: voucher_consume(code=voucher.code, partner=partner))
        assert sum(outcome is None for outcome in outcomes) <= 1
    assert Redemption.objects.get(pk=voucher.pk).status == Redemption.Status.USED
    connection.close()


# --- Console ---------------------------------------------------------------------------------------

def test_catalogue_admin_counts_without_n_plus_one(admin_client, member, django_assert_max_num_queries):
    give(member, 10_000)
    for _ in range(5):
        reward = factories.RewardFactory(points_cost=100)
        redemption_create(member_id=member.pk, reward_id=reward.pk)
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:rewards_reward_changelist"))
    assert response.status_code == 200
    assert Reward.objects.count() == 5


def test_voucher_admin_finds_a_code_typed_with_dashes_and_cancels(admin_client, member):
    give(member, 100)
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory().pk)
    url = reverse("admin:rewards_redemption_changelist")
    page = admin_client.get(url, {"q": codes.format_code(voucher.code).lower()}).content.decode()
    assert voucher.display_code in page
    admin_client.post(url, {"action": "cancel_vouchers", "_selected_action": [voucher.pk]})
    voucher.refresh_from_db()
    member.refresh_from_db()
    assert voucher.status == Redemption.Status.CANCELLED and member.points_balance == 100
