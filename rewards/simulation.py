"""Earning-rule simulation: what a rule would have cost over recent purchases (reads only)."""

from __future__ import annotations

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


def earning_rule_simulate(*, rule: EarningRule, days: int = 30, limit: int = 50_000) -> RuleSimulation:
    """What `rule` would have cost over the last `days` of purchases: the points the engine
    gives with the rule in force minus without it, and how many members that touches.
    Reads only; at most `limit` purchases (the newest) are replayed."""
    since = timezone.now() - timedelta(days=days)
    purchases = (
        Purchase.objects.filter(occurred_at__gte=since)
        .select_related("member__tier")
        .prefetch_related("lines")
        .order_by("-occurred_at")[:limit]
    )
    others = list(EarningRule.objects.filter(active=True).exclude(pk=rule.pk)
              .prefetch_related("stores").select_related("tier"))
    rule_stores = {store.pk for store in rule.stores.all()} if rule.pk else set()
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
            return rule_stores if candidate is rule else {store.pk for store in candidate.stores.all()}

        without = compute_points(data, in_force, store_ids_of=stores_of).total
        with_rule = compute_points(data, [*in_force, rule], store_ids_of=stores_of).total
        if with_rule != without:
            affected += 1
            extra += with_rule - without
            members.add(purchase.member_id)
    return RuleSimulation(days=days, purchases_seen=seen, purchases_affected=affected,
                          members_affected=len(members), extra_points=extra)
