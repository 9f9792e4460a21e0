"""Tills validating and consuming voucher codes: once only, one answer for every bad code, rate-limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from members.models import Member
from members.services import member_set_status
from rewards import codes
from rewards.errors import StoreNotOfPartner, VoucherInvalid, VoucherRateLimited
from rewards.ledger import points_adjust
from rewards.models import Redemption
from rewards.vouchers import (
    FAILURE_LIMIT,
    FAILURE_WINDOW,
    PARTNER_FAILURE_LIMIT,
    redemption_cancel,
    redemption_create,
    voucher_consume,
    voucher_validate,
)
from tests import factories


@pytest.fixture
def voucher(member):
    points_adjust(member_id=member.pk, points=100, reason="Test", staff_user=None)
    return redemption_create(member_id=member.pk, reward_id=factories.RewardFactory(points_cost=100).pk)


def fail(partner, store=None, times=1):
    for _ in range(times):
        with pytest.raises(VoucherInvalid):
            voucher_validate(code=codes.generate_code(), partner=partner, store=store)


def test_a_till_validates_then_consumes_a_code_once(voucher, partner):
    store = factories.StoreFactory(partner=partner)
    typed = codes.format_code(voucher.code).lower()
    checked = voucher_validate(code=typed, partner=partner, store=store)
    assert checked.pk == voucher.pk and checked.status == Redemption.Status.ISSUED  # validating changes nothing
    used = voucher_consume(code=typed, partner=partner, store=store)
    assert (used.status, used.used_by_partner, used.used_at_store) == (Redemption.Status.USED, partner, store)
    voucher.refresh_from_db()
    assert (voucher.status, voucher.used_by_partner_id, voucher.used_at_store_id) == ("used", partner.pk, store.pk)
    assert voucher.used_at is not None
    with pytest.raises(VoucherInvalid):
        voucher_consume(code=typed, partner=partner, store=store)


def test_unknown_mistyped_used_cancelled_expired_and_future_codes_look_the_same(member, voucher, partner):
    reward = voucher.reward
    voucher_consume(code=voucher.code, partner=partner)
    points_adjust(member_id=member.pk, points=100, reason="Test", staff_user=None)
    cancelled = redemption_create(member_id=member.pk, reward_id=reward.pk)
    redemption_cancel(redemption_id=cancelled.pk)
    now = timezone.now()
    expired = factories.RedemptionFactory(member=member, reward=reward, issued_at=now - timedelta(days=31),
                                          expires_at=now - timedelta(days=1))
    future = factories.RedemptionFactory(member=member, reward=reward, issued_at=now + timedelta(days=1),
                                         expires_at=now + timedelta(days=30))
    mistyped = expired.code[:-1] + ("0" if expired.code[-1] != "0" else "1")
    answers = set()
    for code in ["", "NOPE", codes.generate_code(), mistyped, voucher.code, cancelled.code, expired.code,
                 future.code]:
        for service in (voucher_validate, voucher_consume):
            cache.clear()  # sixteen failures in a row: this test is about the answer, not the limit
            with pytest.raises(VoucherInvalid) as error:
                service(code=code, partner=partner)
            answers.add((type(error.value), error.value.code, str(error.value), error.value.http_status))
    assert len(answers) == 1


def test_a_blocked_members_voucher_is_refused_like_any_invalid_code(member, voucher, partner):
    member_set_status(member_id=member.pk, status=Member.Status.BLOCKED)
    with pytest.raises(VoucherInvalid):
        voucher_consume(code=voucher.code, partner=partner)


def test_a_till_may_only_name_its_own_partners_store(voucher, partner):
    elsewhere = factories.StoreFactory()
    with pytest.raises(StoreNotOfPartner):
        voucher_consume(code=voucher.code, partner=partner, store=elsewhere)
    voucher.refresh_from_db()
    assert voucher.status == Redemption.Status.ISSUED


# --- Rate limit ------------------------------------------------------------------------------------

@pytest.fixture
def clock(monkeypatch):
    """Fixed time for the rate limit's one-minute windows: no waiting in tests."""
    # 15 seconds into a minute, after any voucher a fixture issued at the real time.
    start = timezone.now().replace(second=15, microsecond=0) + timedelta(minutes=1)
    state = {"now": start}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])
    return state


def test_repeated_invalid_codes_are_refused_for_the_rest_of_the_minute(voucher, partner, clock):
    fail(partner, times=FAILURE_LIMIT)
    with pytest.raises(VoucherRateLimited) as error:
        voucher_validate(code=codes.generate_code(), partner=partner)
    assert error.value.retry_after == FAILURE_WINDOW - 15
    assert error.value.http_status == 429
    with pytest.raises(VoucherRateLimited):  # even a good code waits: the limit is on the caller
        voucher_consume(code=voucher.code, partner=partner)
    clock["now"] += timedelta(seconds=FAILURE_WINDOW - 15)  # the next window
    assert voucher_consume(code=voucher.code, partner=partner).status == Redemption.Status.USED


def test_the_rate_limit_counts_per_store_and_per_partner(partner, clock):
    stores = [factories.StoreFactory(partner=partner) for _ in range(PARTNER_FAILURE_LIMIT // FAILURE_LIMIT + 1)]
    fail(partner, store=stores[0], times=FAILURE_LIMIT)
    with pytest.raises(VoucherRateLimited):
        voucher_validate(code=codes.generate_code(), partner=partner, store=stores[0])
    fail(partner, store=stores[1])  # another till of the same partner still may
    fail(factories.PartnerFactory())  # and another partner is not affected at all
    # A partner spreading guesses over many tills hits the partner-wide limit.
    for store in stores[1:-1]:
        fail(partner, store=store, times=FAILURE_LIMIT - (1 if store == stores[1] else 0))
    with pytest.raises(VoucherRateLimited):
        voucher_validate(code=codes.generate_code(), partner=partner, store=stores[-1])


def test_successful_codes_do_not_count_towards_the_limit(member, partner, clock):
    points_adjust(member_id=member.pk, points=10_000, reason="Test", staff_user=None)
    reward = factories.RewardFactory(points_cost=100)
    for _ in range(FAILURE_LIMIT + 2):
        voucher = redemption_create(member_id=member.pk, reward_id=reward.pk)
        voucher_consume(code=voucher.code, partner=partner)
