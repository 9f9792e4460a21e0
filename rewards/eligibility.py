"""Catalogue eligibility: which rewards a member may redeem now, and why not. Written once.

Every rule is one row of `RULES`: the condition a reward must meet, as a `Q` over `Reward` built
from the member and the moment (`Situation`), and the reason the member reads when it fails.
Both views are derived from these rows:

- SQL, for lists (`redeemable`): the rows' conditions as one filter, so "what this member can
  have" is a queryset (the partner API's `available_only`: pages stay full, the database counts).
- Python, for one reward (`unavailable_reason`, `unavailable_reasons`): the same `Q` evaluated on
  the loaded reward by `_holds`; the first rule that fails gives the reason, in the rows' order.

Why derive rather than keep two copies side by side: the copies were three (Python in
rewards/vouchers.py with the portal's points check beside it, Python again in the partner API's
reasons, SQL in the API's `available_only` filter), and a rule changed in one of them would have
changed one view only. The evaluator understands a deliberately small part of `Q` (AND and OR, no negation;
exact, isnull, lt, lte, gt, gte; an `F()` of the reward's own fields; foreign keys followed as
attributes; the member's count of vouchers as `REDEEMED`) and refuses anything else, so a new
rule cannot quietly be read one way in SQL and another in Python. Without negation, SQL's
"unknown" (a comparison with NULL) may be read as false: a filter keeps only rows where the
condition is true, and AND/OR never turn unknown into true. tests/rewards/test_rewards_eligibility.py
checks with many random cases against PostgreSQL that the two views agree.

The rules have scopes because not every caller asks every question:
- MEMBER: may the member redeem at all (active). The services refuse others with
  `MemberNotActive` before they look at a reward; the partner API says it for each reward.
  The portal's pages don't ask it (as before): a blocked member sees the catalogue as it is.
- VOUCHER: every voucher, also one a programme gives (stamp card, cashback, campaign): the
  reward is active and in stock.
- CATALOGUE: what a member picks: listed, inside its redeemable window, the minimum tier, the
  limit per member (cancelled vouchers gave their points back and don't count).
- PRICE: the member has the points. The services raise `InsufficientPoints` instead, with the
  points they actually take.
Rules marked `listed` also decide what the catalogue shows at all (`listed`): a reward that is
switched off, not in the catalogue or past its window is left out rather than shown with a reason.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member

from .models import Redemption, Reward


class Scope(enum.Enum):
    MEMBER = "member"
    VOUCHER = "voucher"
    CATALOGUE = "catalogue"
    PRICE = "price"


EVERY_VOUCHER = frozenset({Scope.VOUCHER})  # a programme's voucher (stamp card, cashback, campaign)
CATALOGUE_PICK = frozenset({Scope.VOUCHER, Scope.CATALOGUE})  # a member's pick, points checked apart
MEMBER_VIEW = frozenset({Scope.VOUCHER, Scope.CATALOGUE, Scope.PRICE})  # the portal's catalogue
ALL = frozenset(Scope)  # the partner API's catalogue with a member

REDEEMED = "redeemed_by_member"  # the member's vouchers of the reward that count against its limit


@dataclass(frozen=True)
class Situation:
    """What the rules read about the member and the moment."""

    at: datetime
    member_active: bool = True
    tier_rank: int | None = None
    balance: int = 0

    @classmethod
    def of(cls, member: Member, at: datetime | None = None) -> Situation:
        return cls(at=at or timezone.now(), member_active=member.status == Member.Status.ACTIVE,
                   tier_rank=member.tier.rank if member.tier_id is not None else None,
                   balance=member.points_balance)


Condition = Q | bool  # a bool: a condition on the member alone (no reward column involved)


@dataclass(frozen=True)
class Rule:
    name: str
    scope: Scope
    condition: Callable[[Situation], Condition]
    reason: Callable[[Reward, Situation], str]
    listed: bool = False


def _tier_condition(situation: Situation) -> Q:
    if situation.tier_rank is None:
        return Q(min_tier__isnull=True)
    return Q(min_tier__isnull=True) | Q(min_tier__rank__lte=situation.tier_rank)


RULES: tuple[Rule, ...] = (
    Rule("member active", Scope.MEMBER, lambda s: s.member_active,
         lambda reward, s: _("the member is not active")),
    Rule("active", Scope.VOUCHER, lambda s: Q(active=True),
         lambda reward, s: _("it is not available any more"), listed=True),
    Rule("cause active", Scope.VOUCHER, lambda s: Q(cause__isnull=True) | Q(cause__active=True),
         lambda reward, s: _("its cause takes no more donations"), listed=True),
    Rule("in stock", Scope.VOUCHER, lambda s: Q(stock__isnull=True) | Q(stock__gt=0),
         lambda reward, s: _("it is sold out")),
    Rule("in the catalogue", Scope.CATALOGUE, lambda s: Q(in_catalogue=True),
         lambda reward, s: _("it is not available any more"), listed=True),
    Rule("started", Scope.CATALOGUE, lambda s: Q(valid_from__isnull=True) | Q(valid_from__lte=s.at),
         lambda reward, s: _("it is not available yet")),
    Rule("not ended", Scope.CATALOGUE, lambda s: Q(valid_until__isnull=True) | Q(valid_until__gte=s.at),
         lambda reward, s: _("it is not available any more"), listed=True),
    Rule("tier", Scope.CATALOGUE, _tier_condition,
         lambda reward, s: _("it needs the %(tier)s tier") % {"tier": reward.min_tier.name}),
    Rule("limit per member", Scope.CATALOGUE,
         lambda s: Q(limit_per_member__isnull=True) | Q(**{f"{REDEEMED}__lt": F("limit_per_member")}),
         lambda reward, s: _("you have reached the limit for this reward")),
    Rule("points", Scope.PRICE, lambda s: Q(points_cost__lte=s.balance),
         lambda reward, s: _("you need %(missing)s more points") % {"missing": reward.points_cost - s.balance}),
)


# --- SQL: lists ------------------------------------------------------------------------------------

def counted_redemptions(member_id: int) -> QuerySet[Redemption]:
    """The member's vouchers that count against a reward's limit: cancelled ones gave their points back."""
    return Redemption.objects.filter(member_id=member_id).exclude(status=Redemption.Status.CANCELLED)


def listed(at: datetime | None = None) -> QuerySet[Reward]:
    """What the catalogue shows (to anyone): each with its reason, or without for nobody in particular."""
    situation = Situation(at=at or timezone.now())
    return Reward.objects.filter(*[rule.condition(situation) for rule in RULES if rule.listed])


def redeemable(queryset: QuerySet[Reward], member: Member, *, at: datetime | None = None,
               scopes: frozenset[Scope] = ALL) -> QuerySet[Reward]:
    """`queryset` narrowed to what `member` may redeem now: the rules' conditions as SQL."""
    situation = Situation.of(member, at)
    conditions = [rule.condition(situation) for rule in RULES if rule.scope in scopes]
    if any(condition is False for condition in conditions):
        return queryset.none()
    redeemed = (counted_redemptions(member.pk).filter(reward=OuterRef("pk")).order_by().values("reward")
                .annotate(n=Count("pk")).values("n"))
    return (queryset.annotate(**{REDEEMED: Coalesce(Subquery(redeemed[:1]), Value(0))})
            .filter(*[condition for condition in conditions if isinstance(condition, Q)]))


# --- Python: one reward, with the reason -----------------------------------------------------------

def unavailable_reason(reward: Reward, member: Member, *, at: datetime | None = None,
                       scopes: frozenset[Scope] = CATALOGUE_PICK, redeemed_by_member: int | None = None) -> str | None:
    """Why `member` can't have `reward` now (None: they can). Counts the member's vouchers of the
    reward only if a rule needs them and `redeemed_by_member` doesn't say."""
    def redeemed() -> int:
        if redeemed_by_member is not None:
            return redeemed_by_member
        return counted_redemptions(member.pk).filter(reward_id=reward.pk).count()

    return _first_failure(reward, Situation.of(member, at), scopes, {REDEEMED: redeemed})


def unavailable_reasons(rewards: Iterable[Reward], member: Member, *, at: datetime | None = None,
                        scopes: frozenset[Scope] = CATALOGUE_PICK) -> dict[int, str | None]:
    """`unavailable_reason` for many rewards, with one query for the member's vouchers."""
    rewards = list(rewards)
    situation = Situation.of(member, at)
    limited = [reward.pk for reward in rewards if reward.limit_per_member is not None]
    counts: dict[int, int] = {}
    if limited and Scope.CATALOGUE in scopes:
        rows = (counted_redemptions(member.pk).filter(reward_id__in=limited).order_by().values("reward_id")
                .annotate(n=Count("pk")))
        counts = {row["reward_id"]: row["n"] for row in rows}
    return {reward.pk: _first_failure(reward, situation, scopes, {REDEEMED: lambda pk=reward.pk: counts.get(pk, 0)})
            for reward in rewards}


def _first_failure(reward: Reward, situation: Situation, scopes: frozenset[Scope],
                   facts: Mapping[str, Callable[[], object]]) -> str | None:
    for rule in RULES:
        if rule.scope in scopes and not _holds(rule.condition(situation), reward, facts):
            return rule.reason(reward, situation)
    return None


_COMPARISONS = {"exact": operator.eq, "lt": operator.lt, "lte": operator.le, "gt": operator.gt,
                "gte": operator.ge}


def _holds(condition: Condition, reward: Reward, facts: Mapping[str, Callable[[], object]]) -> bool:
    """Does `reward` meet `condition`, as PostgreSQL would answer `WHERE condition`?"""
    if isinstance(condition, bool):
        return condition
    if condition.negated:
        raise ValueError("Eligibility rules are written without negation: see rewards/eligibility.py.")
    results = (_holds(child, reward, facts) if isinstance(child, Q) else _lookup_holds(*child, reward, facts)
               for child in condition.children)
    return all(results) if condition.connector == Q.AND else any(results)


def _lookup_holds(lookup: str, value: object, reward: Reward, facts: Mapping[str, Callable[[], object]]) -> bool:
    *path, last = lookup.split("__")
    if last not in _COMPARISONS and last != "isnull":
        path, last = [*path, last], "exact"
    if last == "exact" and value is None:  # Django reads `field=None` as IS NULL
        last, value = "isnull", True
    actual = _read(path, reward, facts)
    if last == "isnull":
        return (actual is None) == value
    if isinstance(value, F):
        value = _read(value.name.split("__"), reward, facts)
    elif hasattr(value, "resolve_expression"):
        raise ValueError(f"Eligibility rules compare with values or F() only, not {value!r}.")
    if actual is None or value is None:
        return False  # a comparison with NULL is unknown in SQL, and a filter keeps only what is true
    return _COMPARISONS[last](actual, value)


def _read(path: list[str], reward: Reward, facts: Mapping[str, Callable[[], object]]) -> object:
    if path[0] in facts:
        if len(path) != 1:
            raise ValueError(f"{path[0]} is a number, not a relation.")
        return facts[path[0]]()
    value: object = reward
    for name in path:
        if value is None:
            return None  # a missing related row: its columns are NULL in the LEFT JOIN
        value = getattr(value, name)
    return value
