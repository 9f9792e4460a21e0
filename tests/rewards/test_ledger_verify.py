"""`manage.py verify_ledger`: exit status 0 on a consistent ledger, non-zero naming the member
when a cached balance or pending total was corrupted behind the services' back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import execute_from_command_line
from django.db import connection

from rewards.ledger import points_debit
from rewards.purchases import purchase_record
from tests import factories


def verify_ledger() -> int:
    """Run the command as `manage.py` does and return its exit status."""
    try:
        execute_from_command_line(["manage.py", "verify_ledger"])
    except SystemExit as exit_:
        return exit_.code or 0
    return 0


@pytest.fixture
def ledger(member, partner, base_rule):
    other = factories.enrolled_member()
    purchase_record(member_id=member.pk, partner=partner, order_reference="V-1", amount=Decimal("40"))
    purchase_record(member_id=other.pk, partner=partner, order_reference="V-2", amount=Decimal("15"))
    points_debit(member_id=member.pk, points=25, reason="Prämie")
    return member, other


def test_a_consistent_ledger_exits_zero(ledger, capsys):
    assert verify_ledger() == 0
    assert "ledger OK" in capsys.readouterr().out


def test_a_corrupted_balance_exits_non_zero_and_names_the_member(ledger, capsys):
    member, other = ledger
    with connection.cursor() as cursor:
        cursor.execute("UPDATE members_member SET points_balance = points_balance + 1 WHERE id = %s", [other.pk])
    assert verify_ledger() != 0
    output = capsys.readouterr()
    assert f"member {other.pk}: points_balance 16 != sum of entries 15" in output.out
    assert f"member {member.pk}:" not in output.out
    assert "FAILED" in output.err


def test_corrupted_pending_points_exit_non_zero(ledger, capsys):
    member, _ = ledger
    with connection.cursor() as cursor:
        cursor.execute("UPDATE members_member SET points_pending = 3 WHERE id = %s", [member.pk])
    assert verify_ledger() != 0
    assert f"member {member.pk}: points_pending 3" in capsys.readouterr().out
