"""Purchases: recording one (earning rules, points, statistics), releasing held points after
the return window, the tills' day totals and the nightly rolling statistics.

Lock order: the member (`rewards.ledger.buyer_lock`), then the purchase. Points move only
through the ledger (`post_entry`); the purchase publishes `PurchaseRecorded` last, in its
transaction, and subscribers (referrals) react to it there.

Apps above rewards may add points to a purchase as it is recorded (offers: the member's activated
coupons) through `purchase_bonus_providers`, without rewards importing them: the bonus becomes
part of the purchase (its breakdown, its lines' points, held for the return window like the rest,
one ledger entry), so a return reverses it proportionally like any other point of the purchase.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, DecimalField, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ReferenceConflict
from core.events import publish
from core.stored_texts import StoredText, stored_text
from members.errors import MemberNotActive
from members.models import Member, PartnerRelation
from members.services import partner_relation_record
from partners.models import Partner, Store
from rewards.errors import InvalidPurchase

from . import programme, rule_cache
from .earning import EarningResult, LineInput, PurchaseInput, allocate, compute_points, to_eur
from .events import PurchaseRecorded
from .figures import tier_window
from .ledger import (
    EarnAnswer,
    EarnRequest,
    buyer_annotations,
    buyer_lock,
    points_event,
    post_entry,
    purchase_and_member_lock,
    purchase_earn_statement,
    require_active,
)
from .models import Channel, EarningRule, PointEntry, Purchase, PurchaseLine, PurchasePoints, StoreDayTotal
from .tiers import tier_evaluate, tier_may_rise
from .vouchers import cashback_apply, stamp_cards_apply_purchase, stamps_for


@dataclass(frozen=True)
class LineData:
    amount: Decimal
    category: str = ""
    sku: str = ""
    quantity: int = 1


@dataclass(frozen=True)
class PurchaseOutcome:
    purchase: Purchase
    created: bool


@dataclass(frozen=True)
class PurchaseBonus:
    """Points a provider adds to a purchase being recorded, spread over its lines by
    `line_weights` (one per line, in line order; zero for lines it doesn't cover)."""

    points: int
    line_weights: Sequence[Decimal]
    label_de: str
    label_en: str = ""
    kind: str = PurchasePoints.Kind.OFFER


# Buyer-lock annotation name (rewards.ledger.buyer_annotations) -> provider(member, purchase):
# filled by apps above rewards in their AppConfig.ready() (offers: "offer_activated"). A provider
# runs only when its annotation was true for the buyer, so a purchase of a member with nothing
# to add pays no query for it. It runs in the purchase's transaction, the member locked, after the
# purchase and its lines are written (`purchase.lines.all()` reads no query) and before any point
# is booked; what it writes of its own (a coupon's use) commits with the purchase or not at all.
BonusProvider = Callable[[Member, Purchase], Sequence[PurchaseBonus]]
purchase_bonus_providers: dict[str, BonusProvider] = {}

def purchase_reason(order_reference: str) -> StoredText:
    """The ledger text of a purchase's points (both earn paths and the release of held points)."""
    return stored_text("purchase", reference=order_reference)


def counts_in_12_months(occurred_at: datetime, now: datetime) -> bool:
    """Whether a purchase counts in the member's rolling 12-month statistics (both earn paths)."""
    return occurred_at >= now - timedelta(days=365)


def _validated_lines(amount: Decimal, lines: Sequence[LineData] | None) -> list[LineData]:
    if amount <= 0:
        raise InvalidPurchase(detail=_("the amount must be positive"))
    if not lines:
        return [LineData(amount=amount)]
    if any(line.amount <= 0 for line in lines):
        raise InvalidPurchase(detail=_("every line amount must be positive"))
    if sum((line.amount for line in lines), Decimal(0)) != amount:
        raise InvalidPurchase(detail=_("the lines must add up to the amount"))
    return list(lines)


def _cap_remaining_for(member: Member, occurred_at: datetime):
    def remaining(rule: EarningRule) -> int | None:
        if rule.cap_points is None:
            return None
        since = cap_period_start(rule.cap_period, occurred_at)
        # Bounded on both sides: a purchase posted late (an offline till, an import) counts
        # against its own period, not against every purchase since that period began.
        until = cap_period_end(rule.cap_period, since)
        used = PurchasePoints.objects.filter(
            rule=rule, purchase__member=member, purchase__occurred_at__gte=since, purchase__occurred_at__lt=until,
        ).aggregate(total=Sum("points"))["total"] or 0
        return rule.cap_points - used

    return remaining


def cap_period_start(period: str, at: datetime) -> datetime:
    local = timezone.localtime(at).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == EarningRule.CapPeriod.MONTH:
        local = local.replace(day=1)
    elif period == EarningRule.CapPeriod.YEAR:
        local = local.replace(month=1, day=1)
    return local


def cap_period_end(period: str, start: datetime) -> datetime:
    """The first moment after the period that begins at `start` (local midnight, DST-safe)."""
    step = {EarningRule.CapPeriod.MONTH: relativedelta(months=1),
            EarningRule.CapPeriod.YEAR: relativedelta(years=1)}.get(period, relativedelta(days=1))
    naive = timezone.make_naive(start) + step
    return timezone.make_aware(naive)


def rules_in_force(at: datetime) -> list[EarningRule]:
    return rule_cache.active_rules_at(at)


def _store_ids_of(rule: EarningRule) -> set[int] | frozenset[int]:
    cached = getattr(rule, "store_ids", None)  # set by rule_cache
    return cached if cached is not None else {store.pk for store in rule.stores.all()}


def points_for(member: Member, purchase_input: PurchaseInput, rules: Sequence[EarningRule]):
    return compute_points(
        purchase_input, rules,
        store_ids_of=_store_ids_of,
        cap_remaining=_cap_remaining_for(member, purchase_input.occurred_at),
    )


def purchase_record(
    *, member_id: int, partner: Partner, order_reference: str, amount: Decimal, currency: str = "EUR",
    occurred_at: datetime | None = None, store: Store | None = None, channel: str = "store",
    lines: Sequence[LineData] | None = None, booked_at: datetime | None = None, tier_hint: int | None = None,
) -> PurchaseOutcome:
    """Record a purchase and earn its points. The same (partner, order reference) again returns
    the first purchase and earns nothing: retries never double-credit.

    `booked_at` is when the points enter the ledger (default now); imports of history and the
    demo data book at the purchase time so expiry and tier windows run from then.

    `tier_hint`: the member's tier id (0: none) as the caller just read it, if it did (the API's
    member lookup): the rules then run for that tier only. Should the tier have changed before
    the lock, the statement hands the purchase to the ORM path, which reads it under the lock.

    Most purchases are written by one statement (`purchase_earn`: rules in Python, the writes in
    rewards.ledger.purchase_earn_statement); the others, and any the statement hands back, by
    `purchase_record_orm`, the specification both must agree with
    (tests/rewards/test_earn_paths_agree.py)."""
    occurred_at = occurred_at or timezone.now()
    lines = _validated_lines(amount, lines)
    args = {"member_id": member_id, "partner": partner, "order_reference": order_reference, "amount": amount,
            "currency": currency, "occurred_at": occurred_at, "store": store, "channel": channel, "lines": lines,
            "booked_at": booked_at}
    plan = earn_plan(**args, tier_hint=tier_hint)
    if plan is None:
        return purchase_record_orm(**args)
    return purchase_earn(plan, args)


@transaction.atomic
def purchase_record_orm(
    *, member_id: int, partner: Partner, order_reference: str, amount: Decimal, currency: str = "EUR",
    occurred_at: datetime | None = None, store: Store | None = None, channel: str = "store",
    lines: Sequence[LineData] | None = None, booked_at: datetime | None = None,
) -> PurchaseOutcome:
    """`purchase_record` through the ORM, one statement at a time: the executable specification
    of the purchase earn, and the path of purchases the one-statement earn leaves to Python
    (membership fees, capped rules, bonus providers, a stale tier ladder)."""
    occurred_at = occurred_at or timezone.now()
    lines = _validated_lines(amount, lines)
    member = buyer_lock(member_id, partner=partner, store=store)
    existing = Purchase.objects.filter(partner=partner, order_reference=order_reference).first()
    if existing is not None:
        if existing.member_id != member.pk:
            raise ReferenceConflict(reference=order_reference)
        return PurchaseOutcome(existing, created=False)
    require_active(member)
    if store is not None and store.partner_id != partner.pk:
        raise InvalidPurchase(detail=_("the store belongs to another partner"))

    # A membership fee (rewards.tier_memberships) earns no points: it buys a tier, not goods.
    is_fee = channel == Channel.MEMBERSHIP
    purchase_input = PurchaseInput(
        amount=amount, currency=currency, channel=channel, store_id=store.pk if store else None,
        occurred_at=occurred_at, tier=None if is_fee else member.tier,
        lines=[LineInput(amount=line.amount, category=line.category) for line in lines],
    )
    result = points_for(member, purchase_input, [] if is_fee else rules_in_force(occurred_at))
    purchase = _insert_purchase(member, partner, store, channel, order_reference, amount, currency, occurred_at,
                                lines, result)
    total = result.total + _add_bonuses(member, purchase)
    if not member.related_here:  # the member's first purchase with this partner (at this store)
        partner_relation_record(member_id=member.pk, partner_id=partner.pk, store_id=purchase.store_id,
                                via=PartnerRelation.Via.PURCHASE)
    earned_now = 0 if purchase.points_pending else total
    # One UPDATE of the member row for the statistics and both point counters: every update of
    # that row writes a new version of it, and indexes with it.
    stats = _purchase_stats(member, purchase, pending=purchase.points_pending)
    if earned_now > 0:
        post_entry(member, kind=PointEntry.Kind.EARN, points=earned_now, purchase=purchase, at=booked_at,
                   reason=purchase_reason(order_reference), partner_id=partner.pk,
                   member_fields=stats)
        tier_evaluate(member=member, partner_id=partner.pk, purchase_id=purchase.pk)
    else:
        Member.objects.filter(pk=member.pk).update(**stats)
    member.points_pending += purchase.points_pending
    if not is_fee:  # no stamp for a fee, nor cashback
        _after_purchase(member, purchase, lines)
    # Last, as the referral check ran after stamp cards and cashback: subscribers (referrals
    # qualify a referral with its purchase, inside this transaction) react to the purchase.
    publish(PurchaseRecorded(
        member_id=member.pk, partner_id=partner.pk, purchase_id=purchase.pk, store_id=purchase.store_id,
        order_reference=order_reference, amount=str(amount), currency=currency, points=total,
        buyer_flags=tuple(name for name in buyer_annotations if getattr(member, name, False)),
        occurred_at=occurred_at.isoformat(), categories=_distinct(line.category for line in lines),
        skus=_distinct(line.sku for line in lines)))
    return PurchaseOutcome(purchase, created=True)


# --- The purchase earn in one statement -----------------------------------------------------------
#
# What Python has to decide, it decides before the transaction: the points for each tier the
# member might hold (`compute_points`, shared with the ORM path), held or not, the statistics.
# The statement (rewards.ledger.purchase_earn_statement) locks the member, picks the tier's result
# and writes; the events, the tier engine, stamp cards and cashback then run as on the ORM path,
# in the same transaction, in the same order.

@dataclass(frozen=True)
class EarnPlan:
    request: EarnRequest
    variants: dict[str, EarningResult]  # tier id ("" none) -> the rules' result for its holders
    stamps_due: bool  # a stamp card programme stamps this purchase (rewards.vouchers, after the earn)
    cached: rule_cache.Snapshot  # the rules, tiers and programmes it was planned with


def earn_plan(*, member_id: int, partner: Partner, order_reference: str, amount: Decimal, currency: str,
              occurred_at: datetime, store: Store | None, channel: str, lines: Sequence[LineData],
              booked_at: datetime | None, tier_hint: int | None = None) -> EarnPlan | None:
    """What the one-statement earn needs, or None when the purchase needs the ORM path from the
    start: a membership fee, a store of another partner (refused there, after the replay check),
    a rule with a cap in play (the cap's use is a query per rule). With a `tier_hint` (0: none),
    the points for that tier only (purchase_record)."""
    if channel == Channel.MEMBERSHIP or (store is not None and store.partner_id != partner.pk):
        return None
    cached = rule_cache.snapshot()
    ladder = cached.tiers
    if tier_hint is not None and (tier_hint == 0 or cached.tier_by_id(tier_hint) is not None):
        ladder_run = [] if tier_hint == 0 else [cached.tier_by_id(tier_hint)]
        variants = _results_per_tier(cached.rules_at(occurred_at), ladder_run, amount, currency, channel, store,
                                     occurred_at, lines, with_none=tier_hint == 0)
    else:
        variants = _results_per_tier(cached.rules_at(occurred_at), ladder, amount, currency, channel, store,
                                     occurred_at, lines)
    if variants is None:
        return None
    window = programme.return_window_days()
    now = timezone.now()
    entry_at = booked_at or now
    tier_since, tier_until = tier_window(now)  # as tier_evaluate counts right after the entry
    eur = to_eur(amount, currency)
    request = EarnRequest(
        member_id=member_id, partner_id=partner.pk, store_id=store.pk if store else None, channel=channel,
        order_reference=order_reference, amount=amount, currency=currency, occurred_at=occurred_at, now=now,
        hold=window > 0, available_at=now + timedelta(days=window) if window > 0 else now,
        skus=[line.sku for line in lines], categories=[line.category for line in lines],
        quantities=[line.quantity for line in lines], amounts=[line.amount for line in lines],
        variants_json=json.dumps({key: [result.total, result.line_points,
                                        [[c.kind, c.rule.pk if c.rule else None, c.tier.pk if c.tier else None,
                                          c.points] for c in result.components]]
                                  for key, result in variants.items()}),
        entry_at=entry_at, reason=purchase_reason(order_reference), eur=eur,
        recent=counts_in_12_months(occurred_at, now), python_flags=tuple(purchase_bonus_providers),
        evaluate_tiers=[0 if tier is None else tier.pk for tier in [None, *ladder] if tier_may_rise(tier, ladder)],
        tier_since=tier_since, tier_until=tier_until)
    probe = Purchase(currency=currency) if cached.stamp_programs else None  # a model costs more than the rules
    stamps_due = any(stamps_for(program, probe, lines) > 0 for program in cached.stamp_programs)
    return EarnPlan(request=request, variants=variants, stamps_due=stamps_due, cached=cached)


def _results_per_tier(rules, ladder, amount, currency, channel, store, occurred_at,
                      lines, *, with_none: bool = True) -> dict[str, EarningResult] | None:
    """`compute_points` for a holder of each tier of `ladder` and (`with_none`) for a member
    without one (tiers are few; a tier no rule names and without a multiplier shares the result
    of none). None if a capped rule matched: what is left of its cap takes a query under the lock."""
    capped = []

    def no_cap_read(rule: EarningRule) -> None:
        if rule.cap_points is not None:
            capped.append(rule)
        return None

    def result_for(tier) -> EarningResult:
        purchase_input = PurchaseInput(
            amount=amount, currency=currency, channel=channel, store_id=store.pk if store else None,
            occurred_at=occurred_at, tier=tier,
            lines=[LineInput(amount=line.amount, category=line.category) for line in lines])
        return compute_points(purchase_input, rules, store_ids_of=_store_ids_of, cap_remaining=no_cap_read)

    named = {rule.tier_id for rule in rules if rule.tier_id}
    plain = result_for(None) if with_none or any(tier.earn_multiplier <= 1 and tier.pk not in named
                                                 for tier in ladder) else None
    variants = {"": plain} if with_none else {}
    for tier in ladder:
        alike = tier.earn_multiplier <= 1 and tier.pk not in named
        variants[str(tier.pk)] = plain if alike else result_for(tier)
    return None if capped else variants


def purchase_earn(plan: EarnPlan, args: dict) -> PurchaseOutcome:
    """Record the purchase of `plan` with one statement; what the statement hands back goes the
    ORM way in the same transaction (the member stays locked: same lock order).

    Inside a caller's transaction no savepoint of its own: a refusal (a replay, a conflict, a
    member who isn't active) is raised after the statement wrote nothing, which leaves the
    caller's transaction as it was; an unexpected error after the write dooms the caller's
    transaction (Django rolls it back), as any error does to a purchase of the API."""
    request = plan.request
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic(savepoint=False) if nested else transaction.atomic():
        answer = purchase_earn_statement(request)
        if answer.status == "fallback":
            return purchase_record_orm(**args)
        if answer.status == "existing":
            return PurchaseOutcome(Purchase.objects.get(pk=answer.purchase_id), created=False)
        if answer.status == "created":
            return PurchaseOutcome(_after_earn(plan, args, answer), created=True)
    if answer.status == "missing":
        raise Member.DoesNotExist("Member matching query does not exist.")
    if answer.status == "inactive":
        raise MemberNotActive(status=Member.Status(answer.member_status).label)
    raise ReferenceConflict(reference=request.order_reference)


def _after_earn(plan: EarnPlan, args: dict, answer: EarnAnswer) -> Purchase:
    """After the statement: the objects the caller shows (no read-back), then what the ORM path
    does after its writes, in its order: the points' event, the tier engine, stamp cards and
    cashback, `PurchaseRecorded`."""
    request = plan.request
    result = plan.variants["" if answer.tier_id is None else str(answer.tier_id)]
    purchase = _written_purchase(request, result, answer, args)
    member = Member.from_db("default", ["id", "status", "tier_id", "points_balance"],
                            [request.member_id, answer.member_status, answer.tier_id, answer.balance])
    member.tier = plan.cached.tier_by_id(answer.tier_id)
    earned_now = 0 if request.hold else result.total
    if earned_now > 0:
        publish(points_event(member_id=member.pk, kind=PointEntry.Kind.EARN, points=earned_now, balance=answer.balance,
                             purchase_id=purchase.pk, partner_id=request.partner_id))
        if answer.qualifying is not None:
            tier_evaluate(member=member, partner_id=request.partner_id, purchase_id=purchase.pk,
                          qualifying=answer.qualifying)
    lines = args["lines"]
    if plan.stamps_due:
        stamp_cards_apply_purchase(purchase=purchase, lines=lines)
    if plan.cached.cashback is not None:
        cashback_apply(member_id=member.pk)
    publish(PurchaseRecorded(
        member_id=member.pk, partner_id=request.partner_id, purchase_id=purchase.pk, store_id=request.store_id,
        order_reference=request.order_reference, amount=str(request.amount), currency=request.currency,
        points=result.total, buyer_flags=tuple(name for name, value in answer.flags.items() if value),
        occurred_at=request.occurred_at.isoformat(), categories=_distinct(line.category for line in lines),
        skus=_distinct(line.sku for line in lines)))
    return purchase


def _written_purchase(request: EarnRequest, result: EarningResult, answer: EarnAnswer, args: dict) -> Purchase:
    """The purchase, its lines and breakdown as the statement wrote them, as `_insert_purchase`
    leaves them (the breakdown with its rules and tiers, as prefetch_related would load them)."""
    purchase = Purchase(
        pk=answer.purchase_id, member_id=request.member_id, partner=args["partner"], store=args["store"],
        channel=request.channel, order_reference=request.order_reference, amount=request.amount,
        currency=request.currency, occurred_at=request.occurred_at, points_earned=result.total,
        points_reversed=0, points_pending=result.total if request.hold else 0, available_at=request.available_at,
        returned_amount=Decimal(0), created_at=request.now)
    purchase._state.adding = False
    purchase._state.db = "default"
    purchase.member_public_id = answer.public_id  # what the API shows (members.presence.MemberIdField)
    lines = [PurchaseLine(pk=pk, purchase=purchase, sku=line.sku, category=line.category, quantity=line.quantity,
                          amount=line.amount, points=points, returned_amount=Decimal(0), points_reversed=0)
             for pk, line, points in zip(answer.line_ids, args["lines"], result.line_points, strict=True)]
    breakdown = [PurchasePoints(pk=pk, purchase=purchase, kind=c.kind, rule=c.rule, tier=c.tier, points=c.points)
                 for pk, c in zip(answer.breakdown_ids, result.components, strict=True)]
    for row in (*lines, *breakdown):
        row._state.adding = False
        row._state.db = "default"
    purchase._prefetched_objects_cache = {"lines": _as_prefetched(purchase.lines, lines),
                                          "breakdown": _as_prefetched(purchase.breakdown, breakdown)}
    return purchase


def _distinct(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))


def _add_bonuses(member: Member, purchase: Purchase) -> int:
    """Ask the providers whose buyer annotation is true; fold their points into the purchase
    just inserted (its points, its lines, its breakdown). Returns the points added."""
    bonuses = [bonus for name, provide in purchase_bonus_providers.items() if getattr(member, name, False)
               for bonus in provide(member, purchase) if bonus.points > 0]
    if not bonuses:
        return 0
    lines = list(purchase.lines.all())
    for bonus in bonuses:
        for line, share in zip(lines, allocate(bonus.points, list(bonus.line_weights)), strict=True):
            line.points += share
    PurchaseLine.objects.bulk_update(lines, ["points"])
    added = sum(bonus.points for bonus in bonuses)
    purchase.points_earned += added
    if programme.return_window_days() > 0:  # held for the return window like the purchase's own points
        purchase.points_pending += added
    Purchase.objects.filter(pk=purchase.pk).update(points_earned=purchase.points_earned,
                                                   points_pending=purchase.points_pending)
    rows = PurchasePoints.objects.bulk_create(
        PurchasePoints(purchase=purchase, kind=bonus.kind, points=bonus.points, label_de=bonus.label_de[:120],
                       label_en=bonus.label_en[:120]) for bonus in bonuses)
    # The API answers from the prefetched breakdown: it shows the coupons too, without a query.
    purchase._prefetched_objects_cache["breakdown"]._result_cache.extend(rows)
    return added


def _after_purchase(member: Member, purchase: Purchase, lines: Sequence[LineData]) -> None:
    """Stamp cards fill and cashback converts, in the purchase's transaction."""
    if rule_cache.stamp_programs():
        stamp_cards_apply_purchase(purchase=purchase, lines=lines)
    if rule_cache.cashback_program() is not None:
        cashback_apply(member_id=member.pk)


def _insert_purchase(member, partner, store, channel, order_reference, amount, currency, occurred_at, lines,
                     result) -> Purchase:
    window = programme.return_window_days()
    now = timezone.now()
    try:
        with transaction.atomic():
            purchase = Purchase.objects.create(
                member=member, partner=partner, store=store, channel=channel, order_reference=order_reference,
                amount=amount, currency=currency, occurred_at=occurred_at, points_earned=result.total,
                points_pending=result.total if window > 0 else 0,
                available_at=now + timedelta(days=window) if window > 0 else now,
            )
    except IntegrityError as error:
        raise ReferenceConflict(reference=order_reference) from error
    created_lines = PurchaseLine.objects.bulk_create(
        PurchaseLine(purchase=purchase, sku=line.sku, category=line.category, quantity=line.quantity,
                     amount=line.amount, points=points)
        for line, points in zip(lines, result.line_points, strict=True)
    )
    breakdown = PurchasePoints.objects.bulk_create(
        PurchasePoints(purchase=purchase, kind=c.kind, rule=c.rule, tier=c.tier, points=c.points)
        for c in result.components
    )
    # What prefetch_related would load (in id order, with rule and tier): callers that show the
    # new purchase, like the API's answer, don't read back what was just written.
    purchase._prefetched_objects_cache = {"lines": _as_prefetched(purchase.lines, created_lines),
                                          "breakdown": _as_prefetched(purchase.breakdown, breakdown)}
    return purchase


def _as_prefetched(manager, rows: list):
    # As prefetch_related stores them: a queryset holding its rows (further filters query again).
    queryset = manager.get_queryset()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    return queryset


def _purchase_stats(member: Member, purchase: Purchase, *, pending: int = 0) -> dict:
    """The member row's purchase statistics and held points after `purchase` (column -> value),
    for the one UPDATE the purchase makes of it (through the ledger when points are earned)."""
    eur = to_eur(purchase.amount, purchase.currency)
    recent = counts_in_12_months(purchase.occurred_at, timezone.now())
    last = member.last_purchase_at
    return {
        "lifetime_spend": F("lifetime_spend") + eur,
        "spend_12m": F("spend_12m") + (eur if recent else 0),
        "purchases_12m": F("purchases_12m") + (1 if recent else 0),
        "last_purchase_at": purchase.occurred_at if last is None or purchase.occurred_at > last else last,
        "points_pending": F("points_pending") + pending,
    }


@transaction.atomic
def purchase_release_pending(*, purchase_id: int) -> PointEntry | None:
    """Make a purchase's held points available once its return window has passed."""
    member, purchase = purchase_and_member_lock(purchase_id)
    if purchase.points_pending <= 0 or (purchase.available_at and purchase.available_at > timezone.now()):
        return None
    points = purchase.points_pending
    Purchase.objects.filter(pk=purchase.pk).update(points_pending=0)
    Member.objects.filter(pk=member.pk).update(points_pending=F("points_pending") - points)
    member.points_pending -= points
    entry = post_entry(member, kind=PointEntry.Kind.EARN, points=points, purchase=purchase,
                       reason=purchase_reason(purchase.order_reference))
    tier_evaluate(member=member, purchase_id=purchase.pk)
    if rule_cache.cashback_program() is not None:  # held points are earned now: they may convert
        cashback_apply(member_id=member.pk)
    return entry


def release_due_pending_points(*, now: datetime | None = None) -> int:
    """The beat job: release every purchase whose return window has ended. Returns how many."""
    due = Purchase.objects.filter(points_pending__gt=0, available_at__lte=now or timezone.now())
    released = 0
    for purchase_id in due.values_list("pk", flat=True).iterator():
        released += purchase_release_pending(purchase_id=purchase_id) is not None
    return released



@transaction.atomic
def store_day_report(*, store: Store, day: date, receipts: int, revenue: Decimal,
                     currency: str = "EUR") -> StoreDayTotal:
    """A till's count of all receipts of a day (members or not). Reporting the day again
    replaces the figures: tills send corrections after the day is closed."""
    total, _created = StoreDayTotal.objects.update_or_create(
        store=store, day=day, defaults={"receipts": receipts, "revenue": revenue, "currency": currency})
    return total


# --- Rolling purchase statistics ---------------------------------------------------------------

def member_stats_refresh(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Nightly: recompute the rolling 12-month purchase figures that time (not purchases) changes.

    The purchase service keeps them current as purchases and returns arrive; a purchase that
    ages out of the window only leaves it here. Members are updated in id-range batches, each
    its own short transaction, so no member row stays locked for long."""
    now = now or timezone.now()
    since = now - timedelta(days=365)
    recent = Purchase.objects.filter(member=OuterRef("pk"), occurred_at__gte=since).order_by().values("member")
    eur_amount = Case(
        *[When(currency=code, then=(F("amount") - F("returned_amount")) * Decimal(str(rate)))
          for code, rate in settings.LOYALTY_CURRENCY_TO_EUR.items()],
        default=F("amount") - F("returned_amount"), output_field=DecimalField(max_digits=14, decimal_places=2),
    )
    count = Subquery(recent.annotate(n=Count("pk")).values("n")[:1])
    spend = Subquery(recent.annotate(total=Sum(eur_amount)).values("total")[:1])
    money = DecimalField(max_digits=14, decimal_places=2)
    candidates = Member.objects.filter(Q(purchases_12m__gt=0) | Q(last_purchase_at__gte=since))
    ids = list(candidates.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        with transaction.atomic():
            Member.objects.filter(pk__in=chunk).update(
                purchases_12m=Coalesce(count, Value(0)),
                spend_12m=Coalesce(spend, Value(Decimal("0")), output_field=money),
            )
    return len(ids)
