"""A hypothesis state machine over the ledger: earn, debit, return (by amount and by lines),
release, expire and adjust in any order, on a clock that only moves forward.

The model is the textbook one the DESIGN formula stands in for: every credit is a lot with an
expiry date, every debit (redemption, negative adjustment, return) eats the oldest lots first,
expiry empties the lots that are due. After every step the database must agree with it to
the point: the balance, what is pending, and what expires when.

Each example runs in its own savepoint, rolled back at teardown, with `timezone.now` pinned to
the machine's clock (the only thing mocked: time).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Sum
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from rewards.earning import reversal_target
from rewards.errors import InsufficientPoints
from rewards.figures import points_expiring_by
from rewards.ledger import points_adjust, points_debit, points_expire_due
from rewards.models import Purchase, PurchasePoints
from rewards.purchases import LineData, purchase_record, release_due_pending_points
from rewards.returns import ReturnLine, purchase_return
from tests import factories

EXPIRY_MONTHS = 24
CENT = Decimal("0.01")
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400"), places=2)
CATEGORIES = ["Kaffee", "Wein", ""]


class LedgerMachine(RuleBasedStateMachine):
    window_days = 0
    purchases = Bundle("purchases")

    def __init__(self):
        super().__init__()
        self.clock = datetime(2023, 1, 2, 9, 30, tzinfo=UTC)
        self._settings = override_settings(LOYALTY_RETURN_WINDOW_DAYS=self.window_days,
                                           LOYALTY_POINTS_EXPIRY_MONTHS=EXPIRY_MONTHS)
        self._settings.enable()
        self._clock = mock.patch("django.utils.timezone.now", lambda: self.clock)
        self._clock.start()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        try:
            cache.clear()  # the rule cache must not keep rules of a rolled-back example
            factories.tier_ladder()
            self.partner = factories.PartnerFactory(name="Stateful GmbH")
            factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)
            self.coffee = factories.EarningRuleFactory(name_de="Kaffee ×2", effect="multiplier", value=2,
                                                       category="Kaffee")
            self.member = factories.enrolled_member()
        except BaseException:
            self.teardown()  # hypothesis only tears down a machine that was built
            raise
        self.lots: list[list] = []  # [expires_at, points left], oldest first
        self.pending: dict[int, int] = {}  # purchase id -> points held for the return window

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)
        self._clock.stop()
        self._settings.disable()

    # --- the model ---------------------------------------------------------------------------

    @property
    def balance(self) -> int:
        return sum(points for _, points in self.lots)

    def _credit(self, points: int) -> None:
        if points > 0:
            self.lots.append([self.clock + relativedelta(months=EXPIRY_MONTHS), points])

    def _consume(self, points: int) -> None:
        """Oldest first, whether or not a lot is past its date (the job may not have run yet)."""
        assert 0 <= points <= self.balance
        for lot in self.lots:
            taken = min(lot[1], points)
            lot[1] -= taken
            points -= taken
        self.lots = [lot for lot in self.lots if lot[1] > 0]

    def _due_by(self, at: datetime) -> int:
        return sum(points for expires_at, points in self.lots if expires_at <= at)

    def _tick(self, days: int) -> None:
        self.clock += timedelta(days=days)

    # --- the rules -----------------------------------------------------------------------------

    @rule(target=purchases, amount=amounts, parts=st.integers(min_value=1, max_value=3),
          days=st.integers(min_value=0, max_value=90))
    def earn(self, amount, parts, days):
        self._tick(days)
        outcome = purchase_record(member_id=self.member.pk, partner=self.partner, order_reference=uuid.uuid4().hex,
                                  amount=amount, lines=_split(amount, parts))
        purchase = outcome.purchase
        # 1 point per EUR on every line, floored once for the purchase; promotions and the tier on top.
        assert purchase.points_earned >= int(amount)
        breakdown = PurchasePoints.objects.filter(purchase=purchase).aggregate(total=Sum("points", default=0))
        assert breakdown["total"] == purchase.points_earned
        if self.window_days:
            assert purchase.points_pending == purchase.points_earned
            self.pending[purchase.pk] = purchase.points_earned
        else:
            self._credit(purchase.points_earned)
        return purchase.pk

    @rule(points=st.integers(min_value=1, max_value=600))
    def debit(self, points):
        try:
            points_debit(member_id=self.member.pk, points=points, reason="stateful")
        except InsufficientPoints:
            assert points > self.balance
        else:
            self._consume(points)

    @rule(points=st.integers(min_value=-300, max_value=300).filter(lambda value: value != 0))
    def adjust(self, points):
        try:
            points_adjust(member_id=self.member.pk, points=points, reason="stateful", staff_user=None)
        except InsufficientPoints:
            assert self.balance + points < 0
        else:
            self._credit(points) if points > 0 else self._consume(-points)

    @rule(purchase_id=purchases, share=st.integers(min_value=1, max_value=100))
    def return_an_amount(self, purchase_id, share):
        purchase = Purchase.objects.get(pk=purchase_id)
        left = purchase.amount - purchase.returned_amount
        if left <= 0:
            return
        amount = min(left, max(CENT, (left * share / 100).quantize(CENT)))
        self._give_back(purchase, amount=amount)

    @rule(purchase_id=purchases, pick=st.integers(min_value=0, max_value=2),
          share=st.integers(min_value=1, max_value=100))
    def return_a_line(self, purchase_id, pick, share):
        purchase = Purchase.objects.get(pk=purchase_id)
        lines = list(purchase.lines.order_by("pk"))
        line = lines[pick % len(lines)]
        left = line.amount - line.returned_amount
        if left <= 0:
            return
        amount = min(left, max(CENT, (left * share / 100).quantize(CENT)))
        # At the rate the line earned when it was bought, whatever the rules say today.
        expected = reversal_target(line.points, line.returned_amount + amount, line.amount) - line.points_reversed
        result = self._give_back(purchase, lines=[ReturnLine(line.pk, amount)])
        assert result.points_reversed == expected

    def _give_back(self, purchase: Purchase, **what):
        result = purchase_return(purchase_id=purchase.pk, reference=uuid.uuid4().hex, **what)
        if purchase.pk in self.pending and self.pending[purchase.pk] > 0:
            # Still in the return window: only what is pending shrinks, nothing is ever short.
            assert result.shortfall_points == 0
            self.pending[purchase.pk] -= result.points_reversed
        else:
            taken = min(result.points_reversed, self.balance)
            assert result.shortfall_points == result.points_reversed - taken
            self._consume(taken)
        purchase.refresh_from_db()
        if purchase.returned_amount == purchase.amount:
            assert purchase.points_reversed == purchase.points_earned
        return result

    @precondition(lambda self: self.window_days > 0)
    @rule(days=st.integers(min_value=1, max_value=30))
    def release(self, days):
        self._tick(days)
        due = [pk for pk, available_at in Purchase.objects.filter(pk__in=list(self.pending))
               .values_list("pk", "available_at") if available_at <= self.clock and self.pending[pk] > 0]
        assert release_due_pending_points(now=self.clock) == len(due)
        for pk in due:
            self._credit(self.pending.pop(pk))
        for pk in [pk for pk, points in self.pending.items() if points == 0]:
            del self.pending[pk]  # fully returned inside the window: nothing to release

    @rule(days=st.integers(min_value=1, max_value=400))
    def expire(self, days):
        self._tick(days)
        expected = self._due_by(self.clock)
        report = points_expire_due(now=self.clock, batch_size=7)
        assert report.points == expected
        assert report.members == (1 if expected else 0)
        self.lots = [lot for lot in self.lots if lot[0] > self.clock]
        assert points_expire_due(now=self.clock).points == 0  # idempotent

    @rule(value=st.sampled_from([Decimal("1.5"), Decimal("2"), Decimal("3")]))
    def change_the_coffee_promotion(self, value):
        self.coffee.value = value
        self.coffee.save()  # through save(), so the rule cache hears of it

    # --- invariants (one query each, so the machine stays fast) -------------------------------

    @invariant()
    def balance_and_pending_agree_with_the_ledger_and_the_model(self):
        with connection.cursor() as cursor:
            cursor.execute(_TOTALS_SQL, {"member": self.member.pk})
            balance, pending, ledger, on_purchases = cursor.fetchone()
        assert balance == ledger == self.balance
        assert balance >= 0
        assert pending == on_purchases == sum(self.pending.values())

    @invariant()
    def purchases_never_reverse_more_than_they_earned_and_lines_add_up(self):
        with connection.cursor() as cursor:
            cursor.execute(_BAD_PURCHASES_SQL, {"member": self.member.pk})
            assert cursor.fetchall() == []

    @invariant()
    def expiring_soon_matches_the_oldest_lots(self):
        for ahead in (30, 400):
            at = self.clock + timedelta(days=ahead)
            assert points_expiring_by(member_id=self.member.pk, at=at) == self._due_by(at)


_TOTALS_SQL = """
    SELECT m.points_balance, m.points_pending,
           (SELECT coalesce(sum(points), 0) FROM rewards_pointentry WHERE member_id = m.id),
           (SELECT coalesce(sum(points_pending), 0) FROM rewards_purchase WHERE member_id = m.id)
    FROM members_member m WHERE m.id = %(member)s
"""

_BAD_PURCHASES_SQL = """
    SELECT p.id FROM rewards_purchase p
    JOIN rewards_purchaseline l ON l.purchase_id = p.id
    WHERE p.member_id = %(member)s
    GROUP BY p.id
    HAVING NOT (0 <= p.points_reversed AND p.points_reversed <= p.points_earned
                AND p.returned_amount <= p.amount
                AND sum(l.points) = p.points_earned
                AND sum(l.points_reversed) = p.points_reversed
                AND sum(l.returned_amount) = p.returned_amount
                AND bool_and(l.points_reversed <= l.points AND l.returned_amount <= l.amount))
"""


class LedgerWithReturnWindowMachine(LedgerMachine):
    window_days = 14


def _split(amount: Decimal, parts: int) -> list[LineData]:
    cents = int(amount * 100)
    parts = min(parts, cents)
    sizes = [cents // parts] * parts
    sizes[0] += cents - sum(sizes)
    return [LineData(amount=Decimal(size) / 100, category=CATEGORIES[index % 3]) for index, size in enumerate(sizes)]


MACHINE_SETTINGS = settings(
    max_examples=12, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.slow
def test_ledger_matches_the_oldest_first_model_in_any_order(db):
    run_state_machine_as_test(LedgerMachine, settings=MACHINE_SETTINGS)


@pytest.mark.slow
def test_ledger_with_a_return_window_matches_the_model_in_any_order(db):
    run_state_machine_as_test(LedgerWithReturnWindowMachine, settings=MACHINE_SETTINGS)
