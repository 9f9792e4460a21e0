"""Earning-rule simulation: what a rule would have cost over recent purchases (reads only).

A rule is simulated on the purchases of the last N days as if it had been active all that time:
its own validity window is ignored, so a promotion planned for next month can be tried on last
month's purchases. The rule need not be saved: the add form simulates the unsaved instance it
built, with the stores chosen in the form (an unsaved rule has no many-to-many rows to read).
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from . import rule_cache
from .earning import LineInput, PurchaseInput, compute_points
from .models import EarningRule, Purchase


@dataclass(frozen=True)
class RuleSimulation:
    days: int
    purchases_seen: int
    purchases_affected: int
    members_affected: int
    extra_points: int
    window_ignored: bool = False  # the rule has its own dates, which the simulation did not apply


def earning_rule_simulate(
    *, rule: EarningRule, days: int = 30, limit: int = 50_000, store_ids: Collection[int] | None = None,
) -> RuleSimulation:
    """What `rule` would have cost over the last `days` of purchases: the points the engine
    gives with the rule in force minus without it, and how many members that touches.
    The rule counts as in force on every one of those days (its own window is ignored); the
    other active rules keep theirs. `store_ids` are the rule's stores when it is not saved yet
    (default: read from the saved rule). Reads only; at most `limit` purchases (the newest)."""
    since = timezone.now() - timedelta(days=days)
    purchases = (
        Purchase.objects.filter(occurred_at__gte=since)
        .select_related("member__tier")
        .prefetch_related("lines")
        .order_by("-occurred_at")[:limit]
    )
    others = EarningRule.objects.filter(active=True).prefetch_related("stores").select_related("tier")
    if rule.pk is not None:
        others = others.exclude(pk=rule.pk)
    others = list(others)
    if store_ids is None:
        store_ids = [store.pk for store in rule.stores.all()] if rule.pk is not None else []
    rule_stores = set(store_ids)
    timeless = _without_window(rule)
    seen = affected = extra = 0
    members: set[int] = set()
    for purchase in purchases.iterator(chunk_size=2000):
        seen += 1
        data = PurchaseInput(
            amount=purchase.amount, currency=purchase.currency, channel=purchase.channel,
            store_id=purchase.store_id, occurred_at=purchase.occurred_at, tier=purchase.member.tier,
            lines=[LineInput(amount=line.amount, category=line.category) for line in purchase.lines.all()],
        )
        in_force = [other for other in others if rule_cache.in_window(other, purchase.occurred_at)]

        def stores_of(candidate, rule_stores=rule_stores):
            return rule_stores if candidate is timeless else {store.pk for store in candidate.stores.all()}

        without = compute_points(data, in_force, store_ids_of=stores_of).total
        with_rule = compute_points(data, [*in_force, timeless], store_ids_of=stores_of).total
        if with_rule != without:
            affected += 1
            extra += with_rule - without
            members.add(purchase.member_id)
    return RuleSimulation(days=days, purchases_seen=seen, purchases_affected=affected,
                          members_affected=len(members), extra_points=extra,
                          window_ignored=rule.valid_from is not None or rule.valid_until is not None)


def _without_window(rule: EarningRule) -> EarningRule:
    """A copy of `rule` without its dates (the caller's instance, perhaps a form's, stays as it is)."""
    timeless = copy.copy(rule)
    timeless.valid_from = timeless.valid_until = None
    return timeless
