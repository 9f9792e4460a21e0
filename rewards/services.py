"""Every change to points goes through here.

Lock, then check, then write: the member row is locked (`select_for_update`) before the
balance is read, the entry is inserted and the cached balance updated with `F()` in the same
transaction. Several members are locked in primary-key order so two requests can't deadlock.
A purchase or return row is locked after its member, never before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, Sum
from django.db.models.functions import Abs
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ReasonRequired, ReferenceConflict
from members.errors import MemberNotActive
from members.models import Member, PartnerRelation
from members.services import partner_relation_record
from partners.models import Partner, Store
from rewards.errors import (
    AdjustmentTooLarge,
    DailyAdjustmentLimitReached,
    InsufficientPoints,
    InvalidPurchase,
    InvalidReturn,
)

from . import rule_cache
from .earning import LineInput, PurchaseInput, allocate, compute_points, reversal_target
from .figures import (  # points_expiring_by and qualifying_points: part of this module's API
    EXPIRY_DUE_SQL,
    QUALIFYING_KINDS,
    points_expiring_by,  # noqa: F401
    points_expiring_by_members,  # noqa: F401
    qualifying_points,  # noqa: F401
)
from .models import (
    EarningRule,
    PointEntry,
    Purchase,
    PurchaseLine,
    PurchasePoints,
    PurchaseReturn,
    StoreDayTotal,
)

CENT = Decimal("0.01")


# --- Locking and the one place that writes an entry -------------------------------------

def member_lock(member_id: int) -> Member:
    return Member.objects.select_for_update().get(pk=member_id)


def members_lock(member_ids: Sequence[int]) -> dict[int, Member]:
    """Lock several members in primary-key order (the deadlock-free order)."""
    locked = Member.objects.select_for_update().filter(pk__in=set(member_ids)).order_by("pk")
    return {member.pk: member for member in locked}


def credit_expiry(at: datetime) -> datetime | None:
    """N months later on the calendar of the programme's time zone (Europe/Berlin): points earned
    at 00:30 on 15 July expire at 00:30 on 15 January, not at 23:30 on 14 January, as adding the
    months in UTC across a daylight-saving change would give; 31 August ends on 28/29 February."""
    months = settings.LOYALTY_POINTS_EXPIRY_MONTHS
    if months <= 0:
        return None
    # Arithmetic on an aware datetime keeps its wall-clock time; its UTC offset follows the date.
    return at.astimezone(ZoneInfo(settings.TIME_ZONE)) + relativedelta(months=months)


def _post_entry(
    member: Member,
    *,
    kind: str,
    points: int,
    reason: str = "",
    purchase: Purchase | None = None,
    source: str = "",
    reference: str = "",
    created_by: AbstractBaseUser | None = None,
    at: datetime | None = None,
) -> PointEntry:
    """Insert one entry and move the cached balance. The caller holds the member's lock."""
    entry = _insert_entry(member, kind=kind, points=points, reason=reason, purchase=purchase, source=source,
                          reference=reference, created_by=created_by, at=at)
    Member.objects.filter(pk=member.pk).update(points_balance=F("points_balance") + points)
    member.points_balance += points
    return entry


def _insert_entry(member: Member, *, kind: str, points: int, reason: str = "", purchase: Purchase | None = None,
                  source: str = "", reference: str = "", created_by: AbstractBaseUser | None = None,
                  at: datetime | None = None) -> PointEntry:
    """The entry alone: the caller moves the balance by `points` in the same transaction."""
    assert points != 0, "a ledger entry moves points"
    if member.points_balance + points < 0:
        raise InsufficientPoints(available=member.points_balance, requested=-points)
    at = at or timezone.now()
    entry = PointEntry(
        member=member, kind=kind, points=points, reason=reason[:255], purchase=purchase, source=source,
        reference=reference, created_by=created_by, created_at=at,
        expires_at=credit_expiry(at) if points > 0 else None,
    )
    if reference:  # only a referenced entry can collide: spare the savepoint otherwise
        try:
            with transaction.atomic():
                entry.save(force_insert=True)
        except IntegrityError as error:
            raise ReferenceConflict(reference=f"{source}:{reference}") from error
    else:
        entry.save(force_insert=True)
    return entry


def _require_active(member: Member) -> None:
    if member.status != Member.Status.ACTIVE:
        raise MemberNotActive(status=member.get_status_display())


def _existing_entry(source: str, reference: str, *, member_id: int, points: int) -> PointEntry | None:
    """The entry a retry of the same (source, reference) already wrote. A reference reused for
    another member or another number of points is not a retry: it is refused, never answered
    with someone else's entry."""
    if not reference:
        return None
    existing = PointEntry.objects.filter(source=source, reference=reference).first()
    if existing is not None and (existing.member_id != member_id or existing.points != points):
        raise ReferenceConflict(reference=f"{source}:{reference}")
    return existing


# --- Credits and debits used by the other apps ----------------------------------------

@transaction.atomic
def points_credit(
    *, member_id: int, points: int, kind: str = PointEntry.Kind.BONUS, reason: str,
    source: str = "", reference: str = "", created_by: AbstractBaseUser | None = None,
) -> PointEntry:
    """Give points (bonus, refund, goodwill). With a reference, a repeat returns the first entry."""
    if points <= 0:
        raise InvalidPurchase(detail=_("points must be positive"))
    member = member_lock(member_id)
    if existing := _existing_entry(source, reference, member_id=member.pk, points=points):
        return existing
    entry = _post_entry(member, kind=kind, points=points, reason=reason, source=source, reference=reference,
                        created_by=created_by)
    if kind in QUALIFYING_KINDS:
        _evaluate_tier(member)
    return entry


@transaction.atomic
def points_debit(
    *, member_id: int, points: int, kind: str = PointEntry.Kind.REDEEM, reason: str,
    source: str = "", reference: str = "", created_by: AbstractBaseUser | None = None,
) -> PointEntry:
    """Take points (a redemption). Checked after the lock: two debits can't both pass."""
    if points <= 0:
        raise InvalidPurchase(detail=_("points must be positive"))
    member = member_lock(member_id)
    if existing := _existing_entry(source, reference, member_id=member.pk, points=-points):
        return existing
    _require_active(member)
    return _post_entry(member, kind=kind, points=-points, reason=reason, source=source, reference=reference,
                       created_by=created_by)


@transaction.atomic
def points_adjust(*, member_id: int, points: int, reason: str, staff_user: AbstractBaseUser | None) -> PointEntry:
    """A staff correction with a reason; it may not take the balance below zero."""
    if not reason.strip():
        raise ReasonRequired()
    if points == 0:
        raise InvalidPurchase(detail=_("an adjustment must change the balance"))
    member = member_lock(member_id)
    return _post_entry(member, kind=PointEntry.Kind.ADJUST, points=points, reason=reason.strip(),
                       source="staff", created_by=staff_user)


# --- Support's limits on points booked by hand --------------------------------------------

def _programme_day_start(now: datetime) -> datetime:
    """Midnight starting `now`'s day on the programme's calendar (Europe/Berlin)."""
    return now.astimezone(ZoneInfo(settings.TIME_ZONE)).replace(hour=0, minute=0, second=0, microsecond=0)


def staff_points_booked_today(*, staff_user_id: int, now: datetime | None = None) -> int:
    """Absolute points the staff user booked by hand since midnight (Europe/Berlin):
    adjustments and complaint goodwill, the two ways support hands out points."""
    from feedback.services import GOODWILL_SOURCE

    since = _programme_day_start(now or timezone.now())
    entries = PointEntry.objects.filter(created_by_id=staff_user_id, created_at__gte=since).filter(
        Q(kind=PointEntry.Kind.ADJUST) | Q(source=GOODWILL_SOURCE))
    return entries.aggregate(total=Sum(Abs("points")))["total"] or 0


def staff_points_limits_check(*, staff_user: AbstractBaseUser | None, points: int) -> None:
    """Support may book at most LOYALTY_SUPPORT_ADJUST_LIMIT points per entry and
    LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT (absolute, summed) per day; administrators
    (`members.adjust_points_unlimited`) and system jobs (no staff user) have no limit.

    Call it inside the transaction that books the entry, before the member is locked (lock
    order: staff user, then member). The staff user's row is locked so that two adjustments by
    the same person in parallel are checked one after the other: without the lock both would
    read the same day total and both pass."""
    if staff_user is None or staff_user.has_perm("members.adjust_points_unlimited"):
        return
    limit = settings.LOYALTY_SUPPORT_ADJUST_LIMIT
    if abs(points) > limit:
        raise AdjustmentTooLarge(limit=limit)
    daily_limit = settings.LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT
    if not daily_limit:
        return  # 0: no daily limit
    list(get_user_model().objects.select_for_update().filter(pk=staff_user.pk).values_list("pk", flat=True))
    booked = staff_points_booked_today(staff_user_id=staff_user.pk)
    if booked + abs(points) > daily_limit:
        raise DailyAdjustmentLimitReached(limit=daily_limit, booked=booked)


@transaction.atomic
def points_adjust_by_staff(*, member_id: int, points: int, reason: str, staff_user: AbstractBaseUser) -> PointEntry:
    """A correction from the console: `points_adjust` within support's limits."""
    staff_points_limits_check(staff_user=staff_user, points=points)
    return points_adjust(member_id=member_id, points=points, reason=reason, staff_user=staff_user)


# --- Purchases ---------------------------------------------------------------------------

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




def to_eur(amount: Decimal, currency: str) -> Decimal:
    rate = Decimal(str(settings.LOYALTY_CURRENCY_TO_EUR.get(currency, "1")))
    return (amount * rate).quantize(CENT)


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


@transaction.atomic
def purchase_record(
    *, member_id: int, partner: Partner, order_reference: str, amount: Decimal, currency: str = "EUR",
    occurred_at: datetime | None = None, store: Store | None = None, channel: str = "store",
    lines: Sequence[LineData] | None = None, booked_at: datetime | None = None,
) -> PurchaseOutcome:
    """Record a purchase and earn its points. The same (partner, order reference) again returns
    the first purchase and earns nothing: retries never double-credit.

    `booked_at` is when the points enter the ledger (default now); imports of history and the
    demo data book at the purchase time so expiry and tier windows run from then."""
    occurred_at = occurred_at or timezone.now()
    lines = _validated_lines(amount, lines)
    member = _lock_buyer(member_id, partner=partner, store=store)
    existing = Purchase.objects.filter(partner=partner, order_reference=order_reference).first()
    if existing is not None:
        if existing.member_id != member.pk:
            raise ReferenceConflict(reference=order_reference)
        return PurchaseOutcome(existing, created=False)
    _require_active(member)
    if store is not None and store.partner_id != partner.pk:
        raise InvalidPurchase(detail=_("the store belongs to another partner"))

    purchase_input = PurchaseInput(
        amount=amount, currency=currency, channel=channel, store_id=store.pk if store else None,
        occurred_at=occurred_at, tier=member.tier,
        lines=[LineInput(amount=line.amount, category=line.category) for line in lines],
    )
    result = points_for(member, purchase_input, rules_in_force(occurred_at))
    purchase = _insert_purchase(member, partner, store, channel, order_reference, amount, currency, occurred_at,
                                lines, result)
    if not member.related_here:  # the member's first purchase with this partner (at this store)
        partner_relation_record(member_id=member.pk, partner_id=partner.pk, store_id=purchase.store_id,
                                via=PartnerRelation.Via.PURCHASE)
    earned_now = 0 if purchase.points_pending else result.total
    if earned_now > 0:
        _insert_entry(member, kind=PointEntry.Kind.EARN, points=earned_now, purchase=purchase,
                      reason=_("Purchase %(reference)s") % {"reference": order_reference}, at=booked_at)
    # One UPDATE of the member row for the statistics and both point counters: every update of
    # that row writes a new version of it, and indexes with it.
    _update_purchase_stats(member, purchase, balance=earned_now, pending=purchase.points_pending)
    if earned_now > 0:
        _evaluate_tier(member)
    _after_purchase(member, purchase, lines)
    # Inside the transaction: a referral qualifies with its purchase or not at all. It only
    # updates the referral row; the payment (which locks the referrer too) runs after commit.
    if member.referral_pending:
        from referrals.services import referral_purchase_recorded

        referral_purchase_recorded(purchase)
    return PurchaseOutcome(purchase, created=True)


def _lock_buyer(member_id: int, *, partner: Partner, store: Store | None) -> Member:
    """The member's lock, with what a purchase needs to know in the same statement: whether a
    referral waits for it (most members: no, and no query for it then), and whether the member
    is already related to the partner at this store (most purchases: yes, and nothing to write
    then). The tier comes from the process's copy of the ladder."""
    from referrals.models import Referral

    pending = Referral.objects.filter(referee_id=OuterRef("pk"), status=Referral.Status.PENDING)
    relation = PartnerRelation.objects.filter(member_id=OuterRef("pk"), partner_id=partner.pk,
                                              store_id=store.pk if store is not None else None)
    member = (Member.objects.select_for_update(of=("self",))
              .annotate(referral_pending=Exists(pending), related_here=Exists(relation)).get(pk=member_id))
    member.tier = rule_cache.tier_by_id(member.tier_id)
    return member


def _after_purchase(member: Member, purchase: Purchase, lines: Sequence[LineData]) -> None:
    """Stamp cards fill and cashback converts, in the purchase's transaction."""
    from . import vouchers

    if rule_cache.stamp_programs():
        vouchers.stamp_cards_apply_purchase(purchase=purchase, lines=lines)
    if rule_cache.cashback_program() is not None:
        vouchers.cashback_apply(member_id=member.pk)


def _insert_purchase(member, partner, store, channel, order_reference, amount, currency, occurred_at, lines,
                     result) -> Purchase:
    window = settings.LOYALTY_RETURN_WINDOW_DAYS
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


def _update_purchase_stats(member: Member, purchase: Purchase, *, balance: int = 0, pending: int = 0) -> None:
    """The purchase statistics, and the member's point counters moved by `balance`/`pending`."""
    eur = to_eur(purchase.amount, purchase.currency)
    recent = purchase.occurred_at >= timezone.now() - timedelta(days=365)
    last = member.last_purchase_at
    Member.objects.filter(pk=member.pk).update(
        lifetime_spend=F("lifetime_spend") + eur,
        spend_12m=F("spend_12m") + (eur if recent else 0),
        purchases_12m=F("purchases_12m") + (1 if recent else 0),
        last_purchase_at=purchase.occurred_at if last is None or purchase.occurred_at > last else last,
        points_balance=F("points_balance") + balance,
        points_pending=F("points_pending") + pending,
    )
    member.points_balance += balance
    member.points_pending += pending


def _lock_purchase_and_member(purchase_id: int) -> tuple[Member, Purchase]:
    """Lock a purchase's member, then the purchase (the documented order).

    The member is read before its lock, so a merge committing in between can hand the purchase
    to the survivor while we wait: then we hold the duplicate's lock and would book against the
    wrong member. After both locks the owner can't change any more; if it did, lock the new one."""
    while True:
        member_id = Purchase.objects.values_list("member_id", flat=True).get(pk=purchase_id)
        member = member_lock(member_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase_id)
        if purchase.member_id == member.pk:
            return member, purchase


@transaction.atomic
def purchase_release_pending(*, purchase_id: int) -> PointEntry | None:
    """Make a purchase's held points available once its return window has passed."""
    member, purchase = _lock_purchase_and_member(purchase_id)
    if purchase.points_pending <= 0 or (purchase.available_at and purchase.available_at > timezone.now()):
        return None
    points = purchase.points_pending
    Purchase.objects.filter(pk=purchase.pk).update(points_pending=0)
    Member.objects.filter(pk=member.pk).update(points_pending=F("points_pending") - points)
    member.points_pending -= points
    entry = _post_entry(member, kind=PointEntry.Kind.EARN, points=points, purchase=purchase,
                        reason=_("Purchase %(reference)s") % {"reference": purchase.order_reference})
    _evaluate_tier(member)
    if rule_cache.cashback_program() is not None:  # held points are earned now: they may convert
        from .vouchers import cashback_apply

        cashback_apply(member_id=member.pk)
    return entry


def release_due_pending_points(*, now: datetime | None = None) -> int:
    """The beat job: release every purchase whose return window has ended. Returns how many."""
    due = Purchase.objects.filter(points_pending__gt=0, available_at__lte=now or timezone.now())
    released = 0
    for purchase_id in due.values_list("pk", flat=True).iterator():
        released += purchase_release_pending(purchase_id=purchase_id) is not None
    return released


# --- Returns -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReturnLine:
    line_id: int
    amount: Decimal


@transaction.atomic
def store_day_report(*, store: Store, day: date, receipts: int, revenue: Decimal,
                     currency: str = "EUR") -> StoreDayTotal:
    """A till's count of all receipts of a day (members or not). Reporting the day again
    replaces the figures: tills send corrections after the day is closed."""
    total, _created = StoreDayTotal.objects.update_or_create(
        store=store, day=day, defaults={"receipts": receipts, "revenue": revenue, "currency": currency})
    return total


@transaction.atomic
def purchase_return(
    *, purchase_id: int, reference: str, amount: Decimal | None = None, lines: Sequence[ReturnLine] | None = None,
) -> PurchaseReturn:
    """Reverse the points earned on what came back, at the purchase's original rate.

    Give an amount (spread over the lines by what is left of them) or lines. If the member
    already spent the points, the balance stops at zero and the shortfall is recorded."""
    member, purchase = _lock_purchase_and_member(purchase_id)
    if existing := purchase.returns.filter(reference=reference).first():
        return existing
    purchase_lines = list(purchase.lines.select_for_update().order_by("pk"))
    amounts = _return_amounts(purchase_lines, amount, lines)
    total_returned = sum(amounts, Decimal(0))

    reversed_now = 0
    for line, returned in zip(purchase_lines, amounts, strict=True):
        if returned <= 0:
            continue
        line.returned_amount += returned
        target = reversal_target(line.points, line.returned_amount, line.amount)
        reversed_now += target - line.points_reversed
        line.points_reversed = target
    PurchaseLine.objects.bulk_update(purchase_lines, ["returned_amount", "points_reversed"])

    shortfall = _take_back_points(member, purchase, reversed_now, reference)
    Purchase.objects.filter(pk=purchase.pk).update(
        returned_amount=F("returned_amount") + total_returned, points_reversed=F("points_reversed") + reversed_now
    )
    _reduce_purchase_stats(member, purchase, total_returned)
    purchase_return_row = PurchaseReturn.objects.create(
        purchase=purchase, reference=reference, amount=total_returned, points_reversed=reversed_now,
        shortfall_points=shortfall,
    )
    return purchase_return_row


def _return_amounts(purchase_lines: list[PurchaseLine], amount: Decimal | None,
                    lines: Sequence[ReturnLine] | None) -> list[Decimal]:
    remaining = [line.amount - line.returned_amount for line in purchase_lines]
    if lines:
        by_id = {line.pk: index for index, line in enumerate(purchase_lines)}
        amounts = [Decimal(0)] * len(purchase_lines)
        for item in lines:
            if item.line_id not in by_id:
                raise InvalidReturn(detail=_("line %(line)s is not part of this purchase") % {"line": item.line_id})
            amounts[by_id[item.line_id]] += item.amount
    elif amount is not None:
        if amount > sum(remaining, Decimal(0)):
            raise InvalidReturn(detail=_("more than the purchase's unreturned amount"))
        cents = allocate(int(amount / CENT), remaining)
        amounts = [Decimal(cent) * CENT for cent in cents]
    else:
        raise InvalidReturn(detail=_("give an amount or lines"))
    if any(value < 0 for value in amounts) or sum(amounts, Decimal(0)) <= 0:
        raise InvalidReturn(detail=_("the returned amount must be positive"))
    if any(value > left for value, left in zip(amounts, remaining, strict=True)):
        raise InvalidReturn(detail=_("more than the line's unreturned amount"))
    return amounts


def _take_back_points(member: Member, purchase: Purchase, points: int, reference: str) -> int:
    """Returns the shortfall: points that were already spent and could not be taken back."""
    if points <= 0:
        return 0
    if purchase.points_pending > 0:
        # Still held for the return window: nothing was ever available, so nothing is short.
        Purchase.objects.filter(pk=purchase.pk).update(points_pending=F("points_pending") - points)
        Member.objects.filter(pk=member.pk).update(points_pending=F("points_pending") - points)
        member.points_pending -= points
        return 0
    taken = min(points, member.points_balance)
    if taken > 0:
        _post_entry(member, kind=PointEntry.Kind.REVERSAL, points=-taken, purchase=purchase,
                    reason=_("Return %(reference)s") % {"reference": reference})
    return points - taken


def _reduce_purchase_stats(member: Member, purchase: Purchase, returned: Decimal) -> None:
    # Cumulative, like the points: converting each return on its own and rounding it drifts
    # (three returns of 0.11 CHF take 0.36 EUR off a 0.35 EUR purchase). `purchase` is the
    # row read under lock, so its returned_amount is what came back before this return.
    eur = to_eur(purchase.returned_amount + returned, purchase.currency) - to_eur(
        purchase.returned_amount, purchase.currency)
    recent = purchase.occurred_at >= timezone.now() - timedelta(days=365)
    Member.objects.filter(pk=member.pk).update(
        lifetime_spend=F("lifetime_spend") - eur,
        spend_12m=F("spend_12m") - (eur if recent else 0),
    )


# --- Expiry --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpiryReport:
    members: int
    points: int


def points_expire_due(*, now: datetime | None = None, batch_size: int = 10_000, interleave: int = 8) -> ExpiryReport:
    """The expiry job: one set-based pass over all members in id ranges of `batch_size`.

    Each range is worked in `interleave` short transactions, one per residue of the member id
    (id mod 8 = 0, 1, ...): lock those members, then (in a new statement, so it sees every debit
    committed before the lock) compute what is due, insert the expiry entries and lower the
    balances. Neighbouring ids share a table page, and a page has room for only a few new row
    versions: a transaction that updates every member of a page writes most of them elsewhere
    and into every index of the member table, while one that updates every 8th finds room on
    the page (a HOT update, no index writes) and the next one finds the old versions pruned.
    No member stays locked for longer than one such transaction (tens of milliseconds)."""
    now = now or timezone.now()
    bounds = Member.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return ExpiryReport(members=0, points=0)
    members = points = 0
    for low in range(bounds["low"], bounds["high"] + 1, batch_size):
        for residue in range(interleave):
            batch_members, batch_points = _expire_range(low, low + batch_size - 1, now, residue, interleave)
            members += batch_members
            points += batch_points
    return ExpiryReport(members=members, points=points)


_IN_BATCH = "m.id BETWEEN %(low)s AND %(high)s AND mod(m.id, %(step)s) = %(residue)s"
_EXPIRE_BATCH_SQL = f"""
    WITH due AS MATERIALIZED (  -- the formula once per member, not once per use of `amount`
        SELECT m.id, least({EXPIRY_DUE_SQL}, m.points_balance) AS amount
        FROM members_member m WHERE {_IN_BATCH}
    ), entries AS (
        INSERT INTO rewards_pointentry (member_id, kind, points, created_at, expires_at, reason, source, reference)
        SELECT id, 'expire', -amount, %(due_at)s, NULL, %(reason)s, '', '' FROM due WHERE amount > 0
        RETURNING member_id, points
    )
    UPDATE members_member m SET points_balance = m.points_balance + e.points
    FROM entries e WHERE m.id = e.member_id AND {_IN_BATCH}
    RETURNING -e.points
"""  # noqa: S608 - fragments of this module, no input


@transaction.atomic
def _expire_range(low: int, high: int, now: datetime, residue: int = 0, step: int = 1) -> tuple[int, int]:
    batch = {"low": low, "high": high, "step": step, "residue": residue}
    with connection.cursor() as cursor:
        # The planner prices the per-member formula high and would compile it (JIT) for every
        # batch, which takes longer than running it.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SELECT m.id FROM members_member m WHERE {_IN_BATCH} ORDER BY m.id FOR UPDATE",  # noqa: S608
                       batch)
        cursor.execute(_EXPIRE_BATCH_SQL, {**batch, "due_at": now, "reason": _("Points expired")})
        expired = [row[0] for row in cursor.fetchall()]
    return len(expired), sum(expired)


def post_entries_bulk(points_by_member: dict[int, int], *, kind: str, reason: str, at: datetime,
                      source: str = "") -> None:
    """Many entries at once, one per member, for set-based jobs and imports.

    The caller holds the members' row locks and has checked that no balance goes below zero
    (the CHECK constraint would refuse it anyway). Same invariant as `_post_entry`: the entries
    and the balance change commit together: one INSERT and one UPDATE per
    call, whatever the batch size."""
    if not points_by_member:
        return
    ids, points = list(points_by_member), list(points_by_member.values())
    expiries = [credit_expiry(at) if value > 0 else None for value in points]
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO rewards_pointentry (member_id, kind, points, created_at, expires_at, reason, source,
                                               reference)
               SELECT v.member_id, %s, v.points, %s, v.expires_at, %s, %s, ''
               FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS v(member_id, points, expires_at)""",
            [kind, at, reason[:255], source, ids, points, expiries],
        )
        cursor.execute(
            """UPDATE members_member m SET points_balance = m.points_balance + v.points
               FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, points) WHERE m.id = v.id""",
            [ids, points],
        )


# --- Tiers (the ledger decides qualification) ----------------------------------------------

def _evaluate_tier(member: Member) -> None:
    from members.services import tier_evaluate

    tier_evaluate(member=member)


# --- Rule simulation -------------------------------------------------------------------------

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



# --- Rolling purchase statistics ---------------------------------------------------------------

def member_stats_refresh(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Nightly: recompute the rolling 12-month purchase figures that time (not purchases) changes.

    The purchase service keeps them current as purchases and returns arrive; a purchase that
    ages out of the window only leaves it here. Members are updated in id-range batches, each
    its own short transaction, so no member row stays locked for long."""
    from django.db.models import Case, Count, DecimalField, OuterRef, Subquery, Value, When
    from django.db.models.functions import Coalesce

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
