"""The earning rule engine: turns a purchase into points with a breakdown.

Pure computation over plain inputs, so the purchase service, the rule simulation and the
tests all run the same code. Every component (base rate, tier multiplier, each promotion,
each bonus) is floored on its own, so the breakdown always adds up to the total; each
component is then spread over the purchase lines by largest remainder, so a line knows
exactly the points it earned and a return can reverse them at the original rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.utils import timezone

from members.models import Tier

from .models import EarningRule, PurchasePoints

CENT = Decimal("0.01")


def to_eur(amount: Decimal, currency: str) -> Decimal:
    rate = Decimal(str(settings.LOYALTY_CURRENCY_TO_EUR.get(currency, "1")))
    return (amount * rate).quantize(CENT)


@dataclass(frozen=True)
class LineInput:
    amount: Decimal
    category: str = ""


@dataclass(frozen=True)
class PurchaseInput:
    amount: Decimal
    currency: str
    channel: str
    store_id: int | None
    occurred_at: datetime
    lines: Sequence[LineInput]
    tier: Tier | None = None


@dataclass
class Component:
    kind: str
    points: int
    rule: EarningRule | None = None
    tier: Tier | None = None


@dataclass
class EarningResult:
    components: list[Component] = field(default_factory=list)
    line_points: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(component.points for component in self.components)


def allocate(total: int, weights: Sequence[Decimal]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder); sums exactly."""
    weight_sum = sum(weights, Decimal(0))
    if total == 0 or weight_sum <= 0:
        return [0] * len(weights)
    exact = [Decimal(total) * weight / weight_sum for weight in weights]
    shares = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in exact]
    remainder = total - sum(shares)
    by_fraction = sorted(range(len(weights)), key=lambda i: (exact[i] - shares[i], -i), reverse=True)
    for index in by_fraction[:remainder]:
        shares[index] += 1
    return shares


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def rule_matches_purchase(rule: EarningRule, purchase: PurchaseInput, store_ids: set[int]) -> bool:
    """Conditions on the whole purchase; an empty condition matches anything."""
    if rule.valid_from and purchase.occurred_at < rule.valid_from:
        return False
    if rule.valid_until and purchase.occurred_at > rule.valid_until:
        return False
    if rule.currency and rule.currency != purchase.currency:
        return False
    if rule.min_amount is not None and purchase.amount < rule.min_amount:
        return False
    if rule.channel and rule.channel != purchase.channel:
        return False
    if store_ids and purchase.store_id not in store_ids:
        return False
    if rule.tier_id and (purchase.tier is None or purchase.tier.pk != rule.tier_id):
        return False
    weekdays = rule.weekday_set
    # The local day only when a rule asks for it: converting costs more than the other checks together.
    return not (weekdays and timezone.localtime(purchase.occurred_at).weekday() not in weekdays)


def _line_matches(rule: EarningRule, line: LineInput) -> bool:
    return not rule.category or rule.category.casefold() == line.category.casefold()


def compute_points(
    purchase: PurchaseInput,
    rules: Sequence[EarningRule],
    *,
    store_ids_of: Callable[[EarningRule], set[int]],
    cap_remaining: Callable[[EarningRule], int | None] = lambda rule: None,
) -> EarningResult:
    """Points for `purchase` under `rules` (already filtered to rules in force, any order)."""
    ordered = sorted(rules, key=lambda rule: (-rule.priority, rule.pk or 0))
    matching = [rule for rule in ordered if rule_matches_purchase(rule, purchase, store_ids_of(rule))]
    result = EarningResult(line_points=[0] * len(purchase.lines))

    # Base: per line, the highest-priority base rule that matches the line.
    base_raw: list[Decimal] = []
    base_rule_of_line: list[EarningRule | None] = []
    for line in purchase.lines:
        rule = next((r for r in matching if r.effect == EarningRule.Effect.BASE_RATE and _line_matches(r, line)), None)
        base_rule_of_line.append(rule)
        base_raw.append(line.amount * rule.value if rule else Decimal(0))
    for rule in dict.fromkeys(r for r in base_rule_of_line if r is not None):
        raw = [base_raw[i] if base_rule_of_line[i] is rule else Decimal(0) for i in range(len(base_raw))]
        _add(result, Component(PurchasePoints.Kind.BASE.value, _floor(sum(raw, Decimal(0))), rule=rule), raw)

    tier = purchase.tier
    if tier is not None and tier.earn_multiplier > 1:
        raw = [value * (tier.earn_multiplier - 1) for value in base_raw]
        _add(result, Component(PurchasePoints.Kind.TIER.value, _floor(sum(raw, Decimal(0))), tier=tier), raw)

    applied_promotion = False
    for rule in matching:
        if rule.effect == EarningRule.Effect.BASE_RATE:
            continue
        if not rule.stackable and applied_promotion:
            continue  # an exclusive rule only ever applies alone
        in_rule = [_line_matches(rule, line) for line in purchase.lines]
        if not any(in_rule):
            continue
        if rule.effect == EarningRule.Effect.MULTIPLIER:
            raw = [base_raw[i] * (rule.value - 1) if in_rule[i] else Decimal(0) for i in range(len(base_raw))]
            points = _floor(sum(raw, Decimal(0)))
        else:
            raw = [line.amount if in_rule[i] else Decimal(0) for i, line in enumerate(purchase.lines)]
            points = _floor(rule.value)
        remaining = cap_remaining(rule)
        if remaining is not None:
            points = max(0, min(points, remaining))
        if points <= 0:
            continue
        is_multiplier = rule.effect == EarningRule.Effect.MULTIPLIER
        kind = PurchasePoints.Kind.MULTIPLIER if is_multiplier else PurchasePoints.Kind.BONUS
        _add(result, Component(kind.value, points, rule=rule), raw)
        applied_promotion = True
        if not rule.stackable:
            break
    return result


def _add(result: EarningResult, component: Component, weights: Sequence[Decimal]) -> None:
    if component.points <= 0:
        return
    result.components.append(component)
    for index, share in enumerate(allocate(component.points, weights)):
        result.line_points[index] += share


def reversal_target(points: int, returned: Decimal, amount: Decimal) -> int:
    """Points reversed in total once `returned` of `amount` is back: cumulative, so partial
    returns never drift and a full return reverses exactly what was earned."""
    if returned >= amount:
        return points
    return math.floor(Decimal(points) * returned / amount)
