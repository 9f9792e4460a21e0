"""Retries never double-book, and a reference is never answered with somebody else's entry."""

from __future__ import annotations

import pytest

from core.errors import ReferenceConflict
from members.errors import MemberNotActive
from members.models import Member
from rewards.errors import InsufficientPoints, InvalidPurchase
from rewards.ledger import points_credit, points_debit
from rewards.models import PointEntry
from tests import factories


def test_a_retried_credit_returns_the_first_entry(member):
    first = points_credit(member_id=member.pk, points=50, reason="Umfrage", source="survey", reference="7")
    again = points_credit(member_id=member.pk, points=50, reason="Umfrage", source="survey", reference="7")
    assert first.pk == again.pk
    member.refresh_from_db()
    assert member.points_balance == 50


def test_a_retried_debit_returns_the_first_entry(member):
    points_credit(member_id=member.pk, points=100, reason="Start")
    first = points_debit(member_id=member.pk, points=60, reason="Gutschein", source="redemption", reference="9")
    again = points_debit(member_id=member.pk, points=60, reason="Gutschein", source="redemption", reference="9")
    assert first.pk == again.pk
    member.refresh_from_db()
    assert member.points_balance == 40


def test_the_same_reference_in_another_source_is_another_entry(member):
    points_credit(member_id=member.pk, points=5, reason="a", source="survey", reference="1")
    points_credit(member_id=member.pk, points=5, reason="b", source="referral", reference="1")
    assert PointEntry.objects.filter(member=member).count() == 2


@pytest.mark.parametrize("service", [points_credit, points_debit])
def test_a_reference_used_for_another_member_is_refused(member, service):
    """Regression: the second member's request was answered with the first member's entry,
    and nothing was booked for them."""
    other = factories.enrolled_member()
    for someone in (member, other):
        points_credit(member_id=someone.pk, points=100, reason="Start")
    service(member_id=member.pk, points=10, reason="x", source="campaign", reference="42")
    with pytest.raises(ReferenceConflict):
        service(member_id=other.pk, points=10, reason="x", source="campaign", reference="42")
    other.refresh_from_db()
    assert other.points_balance == 100


@pytest.mark.parametrize("service", [points_credit, points_debit])
def test_a_reference_reused_with_other_points_is_refused(member, service):
    points_credit(member_id=member.pk, points=100, reason="Start")
    service(member_id=member.pk, points=10, reason="x", source="campaign", reference="43")
    with pytest.raises(ReferenceConflict):
        service(member_id=member.pk, points=11, reason="x", source="campaign", reference="43")


def test_credits_and_debits_must_move_points(member):
    for service in (points_credit, points_debit):
        for points in (0, -5):
            with pytest.raises(InvalidPurchase):
                service(member_id=member.pk, points=points, reason="x")
    assert not PointEntry.objects.exists()


def test_a_blocked_member_cannot_spend(member):
    points_credit(member_id=member.pk, points=100, reason="Start")
    Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)
    with pytest.raises(MemberNotActive):
        points_debit(member_id=member.pk, points=10, reason="x")


def test_a_debit_larger_than_the_balance_is_refused_and_books_nothing(member):
    points_credit(member_id=member.pk, points=30, reason="Start")
    with pytest.raises(InsufficientPoints) as raised:
        points_debit(member_id=member.pk, points=31, reason="x", source="redemption", reference="1")
    assert raised.value.params == {"available": 30, "requested": 31}
    assert not PointEntry.objects.filter(source="redemption").exists()
