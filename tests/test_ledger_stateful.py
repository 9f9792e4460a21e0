"""A hypothesis state machine over the ledger: earn, debit, return, expire and adjust in any
order, checking the invariants against a simple model after every step."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from loyalty_site.errors import InsufficientPoints
from rewards.models import PointEntry, Purchase
from rewards.services import (
    LineData,
    points_adjust,
    points_debit,
    points_expire_due,
    points_expiring_by,
    purchase_record,
    purchase_return,
)
from tests import factories

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400"), places=2)


class LedgerMachine(RuleBasedStateMachine):
    purchases = Bundle("purchases")

    def __init__(self):
        super().__init__()
        factories.tier_ladder()
        self.partner = factories.PartnerFactory(name=f"Partner {uuid.uuid4().hex[:8]}")
        if not factories.EarningRule.objects.filter(name_de="Stateful base").exists():
            factories.EarningRuleFactory(name_de="Stateful base", effect="base", value=1)
        self.member = factories.enrolled_member()
        self.balance = 0
        self.clock = timezone.now() - timedelta(days=1000)

    def _tick(self, days: int) -> None:
        self.clock = min(self.clock + timedelta(days=days), timezone.now())

    @rule(target=purchases, amount=amounts, split=st.integers(min_value=1, max_value=3),
          days=st.integers(min_value=0, max_value=120))
    def earn(self, amount, split, days):
        self._tick(days)
        lines = _split(amount, split)
        outcome = purchase_record(member_id=self.member.pk, partner=self.partner,
                                  order_reference=uuid.uuid4().hex, amount=amount, lines=lines,
                                  occurred_at=self.clock, booked_at=self.clock)
        assert outcome.purchase.points_earned == int(amount)  # 1 point per EUR, floored once
        self.balance += outcome.purchase.points_earned
        return outcome.purchase.pk

    @rule(points=st.integers(min_value=1, max_value=600))
    def debit(self, points):
        try:
            points_debit(member_id=self.member.pk, points=points, reason="stateful")
        except InsufficientPoints:
            assert points > self.balance
        else:
            assert points <= self.balance
            self.balance -= points

    @rule(purchase_id=purchases, share=st.integers(min_value=1, max_value=100))
    def give_back(self, purchase_id, share):
        purchase = Purchase.objects.get(pk=purchase_id)
        left = purchase.amount - purchase.returned_amount
        if left <= 0:
            return
        amount = max(Decimal("0.01"), (left * share / 100).quantize(Decimal("0.01")))
        before = self.balance
        result = purchase_return(purchase_id=purchase_id, reference=uuid.uuid4().hex, amount=min(amount, left))
        assert result.shortfall_points == max(0, result.points_reversed - before)
        self.balance -= result.points_reversed - result.shortfall_points
        purchase.refresh_from_db()
        if purchase.returned_amount == purchase.amount:
            assert purchase.points_reversed == purchase.points_earned

    @rule(days=st.integers(min_value=1, max_value=400))
    def expire(self, days):
        self._tick(days)
        before = PointEntry.objects.filter(member=self.member, kind=PointEntry.Kind.EXPIRE).count()
        points_expire_due(now=self.clock)
        expired = PointEntry.objects.filter(member=self.member, kind=PointEntry.Kind.EXPIRE).order_by("-id")
        if expired.count() > before:
            assert expired.count() == before + 1  # one entry per member and run
            points = -expired.first().points
            assert 0 < points <= self.balance
            self.balance -= points
        assert points_expiring_by(member_id=self.member.pk, at=self.clock) == 0

    @rule(points=st.integers(min_value=-300, max_value=300).filter(lambda value: value != 0))
    def adjust(self, points):
        try:
            points_adjust(member_id=self.member.pk, points=points, reason="stateful", staff_user=None)
        except InsufficientPoints:
            assert self.balance + points < 0
        else:
            self.balance += points

    @invariant()
    def ledger_matches_cache_and_model(self):
        self.member.refresh_from_db()
        total = PointEntry.objects.filter(member=self.member).aggregate(total=Sum("points", default=0))["total"]
        assert self.member.points_balance == total == self.balance
        assert self.member.points_balance >= 0
        assert self.member.points_pending == 0

    @invariant()
    def purchases_never_reverse_more_than_they_earned(self):
        for purchase in Purchase.objects.filter(member=self.member):
            assert 0 <= purchase.points_reversed <= purchase.points_earned
            assert purchase.returned_amount <= purchase.amount
            lines = purchase.lines.aggregate(points=Sum("points"), reversed=Sum("points_reversed"))
            assert lines["points"] == purchase.points_earned
            assert lines["reversed"] == purchase.points_reversed


def _split(amount: Decimal, parts: int) -> list[LineData]:
    cents = int(amount * 100)
    if cents < parts:
        parts = 1
    sizes = [cents // parts] * parts
    sizes[0] += cents - sum(sizes)
    return [LineData(amount=Decimal(size) / 100, category=["Kaffee", "Wein", ""][index % 3])
            for index, size in enumerate(sizes)]


class TestLedgerStateMachine(TestCase):
    def test_ledger_invariants_hold_in_any_order(self):
        run_state_machine_as_test(LedgerMachine, settings=settings(
            max_examples=30, stateful_step_count=20, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ))
