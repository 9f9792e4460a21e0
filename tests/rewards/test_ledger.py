"""The points ledger: worked examples with exact numbers, database guards, returns, expiry.

A story told step by step, like django-hordak's worked examples: every figure is computed by
hand in the comment above its assertion.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from core.errors import ReasonRequired
from members.models import Member
from rewards.errors import InsufficientPoints, InvalidPurchase, InvalidReturn
from rewards.figures import points_expiring_by
from rewards.ledger import points_adjust, points_debit, points_expire_due
from rewards.models import PointEntry, Purchase, PurchaseReturn
from rewards.purchases import LineData, purchase_record, release_due_pending_points
from rewards.returns import ReturnLine, purchase_return
from rewards.selectors import ledger_mismatches
from tests import factories


def ledger_sum(member: Member) -> int:
    return PointEntry.objects.filter(member=member).aggregate(total=Sum("points", default=0))["total"]


def assert_consistent(member: Member) -> None:
    member.refresh_from_db()
    assert member.points_balance == ledger_sum(member)
    assert member.points_balance >= 0
    pending = Purchase.objects.filter(member=member).aggregate(total=Sum("points_pending", default=0))["total"]
    assert member.points_pending == pending


def test_worked_example_earn_redeem_return_expire(member, partner, base_rule):
    """Erika buys, redeems, returns part of a purchase and lets old points expire."""
    t0 = timezone.now() - timedelta(days=800)
    # 1. 120.00 EUR at 1 point per EUR: 120 points, credited at t0, expiring 24 months later.
    first = purchase_record(member_id=member.pk, partner=partner, order_reference="2024-001",
                            amount=Decimal("120.00"), occurred_at=t0, booked_at=t0).purchase
    assert first.points_earned == 120
    assert_consistent(member)
    assert member.points_balance == 120

    # 2. 57.99 EUR a year later: floor(57.99) = 57 points.
    t1 = t0 + timedelta(days=365)
    second = purchase_record(member_id=member.pk, partner=partner, order_reference="2025-001",
                             amount=Decimal("57.99"), occurred_at=t1, booked_at=t1).purchase
    assert second.points_earned == 57
    assert_consistent(member)
    assert member.points_balance == 177

    # 3. A voucher for 100 points: 77 left. FIFO: the 100 come out of the first 120.
    points_debit(member_id=member.pk, points=100, reason="Gutschein 5 €", source="test", reference="v1")
    assert_consistent(member)
    assert member.points_balance == 77

    # 4. Half of the second purchase comes back: floor(57 × 28.99 / 57.99) = 28 points reversed.
    back = purchase_return(purchase_id=second.pk, reference="R-1", amount=Decimal("28.99"))
    assert back.points_reversed == 28
    assert back.shortfall_points == 0
    assert_consistent(member)
    assert member.points_balance == 49

    # 5. Expiry at t0 + 24 months + 1 day: credits due 120, debits other than expiry 128
    #    (100 redeemed + 28 reversed): max(0, 120 - 128) - 0 = 0. Nothing left of the first
    #    purchase: the debits consumed it (oldest first).
    report = points_expire_due(now=t0 + timedelta(days=731 + 1))
    assert report.points == 0
    assert_consistent(member)

    # 6. Two years after the second purchase its remaining points expire: credits due
    #    120 + 57 = 177, debits 128: 177 - 128 = 49, all of the balance.
    report = points_expire_due(now=t1 + timedelta(days=732))
    assert (report.members, report.points) == (1, 49)
    assert_consistent(member)
    assert member.points_balance == 0

    # 7. Running it again expires nothing more (idempotent).
    assert points_expire_due(now=t1 + timedelta(days=800)).points == 0

    # 8. The rest of the second purchase is returned: floor(57 × 57.99 / 57.99) = 57 in total,
    #    29 more; all were spent or expired, so the balance stays at 0 and 29 are a shortfall.
    late = purchase_return(purchase_id=second.pk, reference="R-2", amount=Decimal("29.00"))
    assert (late.points_reversed, late.shortfall_points) == (29, 29)
    assert_consistent(member)
    second.refresh_from_db()
    assert second.points_reversed == second.points_earned == 57


def test_full_return_reverses_exactly_what_was_earned_after_partial_returns(member, partner, base_rule):
    purchase = purchase_record(member_id=member.pk, partner=partner, order_reference="P", amount=Decimal("99.99"),
                               lines=[LineData(amount=Decimal("33.33")), LineData(amount=Decimal("66.66"))]).purchase
    for index, amount in enumerate(["10.01", "0.01", "33.33", "56.64"]):
        purchase_return(purchase_id=purchase.pk, reference=f"R{index}", amount=Decimal(amount))
    purchase.refresh_from_db()
    assert purchase.returned_amount == purchase.amount
    assert purchase.points_reversed == purchase.points_earned == 99
    assert_consistent(member)
    assert member.points_balance == 0


def test_return_by_lines_reverses_at_the_original_rate_even_after_rules_changed(member, partner, base_rule):
    coffee = factories.EarningRuleFactory(name_de="Kaffee ×3", effect="multiplier", value=3, category="Kaffee")
    purchase = purchase_record(member_id=member.pk, partner=partner, order_reference="L", amount=Decimal("30"),
                               lines=[LineData(amount=Decimal("10"), category="Kaffee"),
                                      LineData(amount=Decimal("20"), category="Wein")]).purchase
    # base 30 + coffee (3 - 1) × 10 = 20: 50 points; the coffee line earned 10 + 20 = 30.
    assert purchase.points_earned == 50
    coffee_line = purchase.lines.get(category="Kaffee")
    assert coffee_line.points == 30
    coffee.active = False
    coffee.save()
    back = purchase_return(purchase_id=purchase.pk, reference="R", lines=[ReturnLine(coffee_line.pk, Decimal("10"))])
    assert back.points_reversed == 30
    assert_consistent(member)
    assert member.points_balance == 20


def test_return_beyond_what_is_left_is_refused_and_changes_nothing(member, partner, base_rule):
    purchase = purchase_record(member_id=member.pk, partner=partner, order_reference="X", amount=Decimal("10")).purchase
    with pytest.raises(InvalidReturn):
        purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("10.01"))
    with pytest.raises(InvalidReturn):
        purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("0"))
    assert not PurchaseReturn.objects.exists()
    assert_consistent(member)
    assert member.points_balance == 10


def test_the_same_return_reference_twice_reverses_once(member, partner, base_rule):
    purchase = purchase_record(member_id=member.pk, partner=partner, order_reference="X", amount=Decimal("10")).purchase
    first = purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("5"))
    again = purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("5"))
    assert first.pk == again.pk
    assert_consistent(member)
    assert member.points_balance == 5


def test_the_same_order_reference_twice_credits_once(member, partner, base_rule):
    first = purchase_record(member_id=member.pk, partner=partner, order_reference="SAME", amount=Decimal("25"))
    again = purchase_record(member_id=member.pk, partner=partner, order_reference="SAME", amount=Decimal("25"))
    assert first.created and not again.created
    assert first.purchase.pk == again.purchase.pk
    assert_consistent(member)
    assert member.points_balance == 25


def test_lines_must_add_up_to_the_amount(member, partner, base_rule):
    with pytest.raises(InvalidPurchase):
        purchase_record(member_id=member.pk, partner=partner, order_reference="L", amount=Decimal("10"),
                        lines=[LineData(amount=Decimal("4"))])
    assert not Purchase.objects.exists()


@override_settings(LOYALTY_RETURN_WINDOW_DAYS=14)
def test_points_are_pending_during_the_return_window(member, partner, base_rule):
    purchase = purchase_record(member_id=member.pk, partner=partner, order_reference="W", amount=Decimal("80")).purchase
    assert_consistent(member)
    assert (member.points_balance, member.points_pending) == (0, 80)
    with pytest.raises(InsufficientPoints):
        points_debit(member_id=member.pk, points=10, reason="zu früh")

    # A return inside the window only lowers what is pending: no ledger entry, no shortfall.
    back = purchase_return(purchase_id=purchase.pk, reference="R", amount=Decimal("30"))
    assert (back.points_reversed, back.shortfall_points) == (30, 0)
    assert_consistent(member)
    assert (member.points_balance, member.points_pending) == (0, 50)
    assert not PointEntry.objects.filter(member=member).exists()

    assert release_due_pending_points() == 0  # not yet
    assert release_due_pending_points(now=timezone.now() + timedelta(days=15)) == 0  # release checks the real clock
    Purchase.objects.filter(pk=purchase.pk).update(available_at=timezone.now() - timedelta(seconds=1))
    assert release_due_pending_points() == 1
    assert_consistent(member)
    assert (member.points_balance, member.points_pending) == (50, 0)
    assert release_due_pending_points() == 0  # released once


def test_staff_adjustment_needs_a_reason_and_cannot_go_negative(member):
    with pytest.raises(ReasonRequired):
        points_adjust(member_id=member.pk, points=10, reason=" ", staff_user=None)
    points_adjust(member_id=member.pk, points=10, reason="Kulanz", staff_user=None)
    with pytest.raises(InsufficientPoints):
        points_adjust(member_id=member.pk, points=-11, reason="zu viel", staff_user=None)
    assert_consistent(member)
    assert member.points_balance == 10


def test_expiring_soon_query(member, partner, base_rule):
    t0 = timezone.now() - timedelta(days=720)  # expires in about 10 days (24 months)
    purchase_record(member_id=member.pk, partner=partner, order_reference="OLD", amount=Decimal("40"),
                    occurred_at=t0, booked_at=t0)
    purchase_record(member_id=member.pk, partner=partner, order_reference="NEW", amount=Decimal("60"))
    soon = timezone.now() + timedelta(days=30)
    assert points_expiring_by(member_id=member.pk, at=soon) == 40
    points_debit(member_id=member.pk, points=15, reason="Gutschein")  # oldest first: 25 of the old left
    assert points_expiring_by(member_id=member.pk, at=soon) == 25
    assert points_expiring_by(member_id=member.pk, at=timezone.now()) == 0


def test_verify_ledger_detects_a_corrupted_balance(member, partner, base_rule, capsys):
    purchase_record(member_id=member.pk, partner=partner, order_reference="V", amount=Decimal("10"))
    call_command("verify_ledger")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE members_member SET points_balance = 11 WHERE id = %s", [member.pk])
    assert ledger_mismatches() == [(member.pk, 11, 10)]
    with pytest.raises(CommandError):  # manage.py turns this into a non-zero exit status
        call_command("verify_ledger")
    assert f"member {member.pk}" in capsys.readouterr().out


# --- The database's own guards, even against raw SQL ----------------------------------------

def test_database_refuses_a_negative_balance(member):
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE members_member SET points_balance = -1 WHERE id = %s", [member.pk])


def test_database_refuses_to_update_a_ledger_entry(member):
    points_adjust(member_id=member.pk, points=5, reason="Test", staff_user=None)
    entry = PointEntry.objects.get(member=member)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE rewards_pointentry SET points = 500 WHERE id = %s", [entry.pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        PointEntry.objects.filter(pk=entry.pk).update(reason="geändert")
    entry.refresh_from_db()
    assert (entry.points, entry.reason) == (5, "Test")


def test_database_refuses_to_delete_a_ledger_entry(member):
    points_adjust(member_id=member.pk, points=5, reason="Test", staff_user=None)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM rewards_pointentry")
    assert PointEntry.objects.filter(member=member).count() == 1


def _check_deferred_constraints_now() -> None:
    """The test's own transaction holds deferred foreign-key checks of the rows just written,
    and PostgreSQL refuses any TRUNCATE of a table with pending trigger events."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_database_refuses_to_truncate_the_ledger(member):
    points_adjust(member_id=member.pk, points=5, reason="Test", staff_user=None)
    _check_deferred_constraints_now()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE rewards_pointentry")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE members_member CASCADE")  # empties the ledger through its foreign key
    assert PointEntry.objects.filter(member=member).count() == 1


def test_truncating_the_ledger_needs_the_named_setting_of_the_test_teardown(member):
    """The one door (tests/conftest.py opens it for Django's flush) is per transaction."""
    points_adjust(member_id=member.pk, points=5, reason="Test", staff_user=None)
    _check_deferred_constraints_now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL treuepunkt.ledger_truncate = 'allowed'")
        cursor.execute("TRUNCATE rewards_pointentry CASCADE")
        cursor.execute("SELECT count(*) FROM rewards_pointentry")
        assert cursor.fetchone() == (0,)
        transaction.set_rollback(True)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE rewards_pointentry")


@pytest.mark.django_db(transaction=True)
def test_transactional_tests_still_empty_the_ledger_in_their_teardown(tiers):
    """Django's flush after this test TRUNCATEs every table, the ledger included (conftest)."""
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=5, reason="Test", staff_user=None)
    with pytest.raises(IntegrityError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("TRUNCATE rewards_pointentry")
    assert PointEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_ledger_is_empty_after_an_earlier_transactional_test():
    assert PointEntry.objects.count() == 0


def test_database_refuses_an_entry_of_zero_points(member):
    with pytest.raises(IntegrityError), transaction.atomic():
        PointEntry.objects.create(member=member, kind=PointEntry.Kind.ADJUST, points=0)


def test_database_refuses_a_debit_with_an_expiry_date(member):
    with pytest.raises(IntegrityError), transaction.atomic():
        PointEntry.objects.create(member=member, kind=PointEntry.Kind.REDEEM, points=-1,
                                  expires_at=timezone.now())
