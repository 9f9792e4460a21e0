"""The points ledger: every write of a balance and every lock that guards one.

Design (DESIGN.md, "The core: the points ledger"):

- `PointEntry` rows are append-only: nothing edits or deletes an entry; a correction is a new
  entry. `Member.points_balance` is a cache of `SUM(points)`, changed only by the functions of
  this module, in the transaction that inserts the entries, while the member row is locked
  (`select_for_update`). A CHECK constraint keeps it >= 0; `manage.py verify_ledger` checks the
  sum. No other module writes `points_balance` (grep for it: only this file updates it).
- Lock, then check, then write: the balance is read after the member's lock, so two debits
  can't both pass. Several members are locked in primary-key order (`members_lock`,
  `_lock_member_ids`) so two transactions can't deadlock; a purchase, voucher, reward or
  referral row is locked after its member, never before. Locks that look the member up through
  another row (`purchase_and_member_lock`, `member_lock_live`) re-check the owner after locking:
  a merge committing in between hands the row to the survivor.
- Expiry: credits expire LOYALTY_POINTS_EXPIRY_MONTHS after they are earned, on the calendar of
  the programme's time zone (`credit_expiry`). What is due at T needs no mutable lots:
  `max(0, credits expiring by T - debits other than expiry) - already expired`
  (`figures.EXPIRY_DUE_SQL`), capped by the balance; `points_expire_due` runs it set-based.
- Set-based paths stay set-based: the expiry job (one INSERT … RETURNING and one UPDATE per id
  range) and the bulk credits of imports and campaigns (`points_credit_bulk`: one lock query, one
  COPY of entries, one `UPDATE … FROM unnest(…)`; `points_open_bulk` for members inserted with
  their opening balance, which only adds the entries and checks the sums).
- A purchase's earn is one statement (`purchase_earn_statement`, the PostgreSQL function whose
  source is rewards.ledger_sql): the member's lock, the replay check, the purchase, its lines and
  breakdown, the entry and the member's one UPDATE in a round trip, with the same lock order and
  checks as the ORM path (`rewards.purchases.purchase_record_orm`), its specification; a property
  test runs both (tests/rewards/test_earn_paths_agree.py).
- Outside the services, one statement sets balances: `BALANCES_FROM_ENTRIES_SQL`, with which the
  benchmark seeder (seed_bench) makes the cached balances of the synthetic members it inserted
  with raw SQL equal their entries (no events: nothing happened to anybody). The members importer
  inserts new members with their opening balance and `points_open_bulk` books and checks the entries.
- Every write publishes its event in the same transaction (rewards.events): `PointsEarned`
  (credits), `PointsSpent` (debits), `PointsExpired`; set-based paths publish one batch, built
  from what their UPDATE … RETURNING reports.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Exists, F, Max, Min, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg.types.json import Jsonb

from core.db import CopyData, copy_data, insert_copy_data, insert_rows, pg_array, select_in
from core.errors import ReasonRequired, ReferenceConflict
from core.events import publish
from core.stored_texts import StoredText, stored_text, text_columns
from members.errors import MemberNotActive
from members.models import Member, PartnerRelation
from partners.models import Partner, Store
from rewards.errors import InsufficientPoints, InvalidPurchase

from . import rule_cache
from .events import PointsChanged, PointsEarned, PointsExpired, PointsSpent
from .figures import EXPIRY_DUE_SQL, QUALIFYING_KINDS
from .models import PointEntry, Purchase

# --- Locks -------------------------------------------------------------------------------------

def member_lock(member_id: int) -> Member:
    return Member.objects.select_for_update().get(pk=member_id)


def member_lock_with_tier(member_id: int) -> Member:
    """The member's lock with its tier read in the same statement (the tier row is not locked)."""
    return Member.objects.select_for_update(of=("self",)).select_related("tier").get(pk=member_id)


def members_lock(member_ids: Sequence[int]) -> dict[int, Member]:
    """Lock several members in primary-key order (the deadlock-free order)."""
    locked = Member.objects.select_for_update().filter(pk__in=set(member_ids)).order_by("pk")
    return {member.pk: member for member in locked}


def _lock_member_ids(member_ids: list[int]) -> list[int]:
    """Lock in primary-key order without loading the rows (batches); returns the ids found."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM members_member WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [member_ids])
        return [row[0] for row in cursor.fetchall()]


def member_lock_live(member_id: int) -> Member:
    """Lock the member who owns a voucher now: a duplicate merged away hands its points to the
    survivor, so a refund to the duplicate would vanish from the person's balance."""
    while True:
        member = member_lock(member_id)
        if member.status != Member.Status.MERGED or member.merged_into_id is None:
            return member
        member_id = member.merged_into_id


# What the buyer's lock reads along (name -> expression on the member row), filled by apps that
# react to purchases (referrals: "referral_pending") in their AppConfig.ready(): the purchase
# pays for it in the lock's statement instead of one query per subscriber.
buyer_annotations: dict[str, Any] = {}


def buyer_lock(member_id: int, *, partner: Partner, store: Store | None) -> Member:
    """The member's lock, with what a purchase needs to know in the same statement: whether the
    member is already related to the partner at this store (most purchases: yes, and nothing to
    write then) and the registered `buyer_annotations`. The tier comes from the process's copy
    of the ladder."""
    relation = PartnerRelation.objects.filter(member_id=OuterRef("pk"), partner_id=partner.pk,
                                              store_id=store.pk if store is not None else None)
    annotations = {name: factory() for name, factory in buyer_annotations.items()}
    member = (Member.objects.select_for_update(of=("self",))
              .annotate(**annotations, related_here=Exists(relation)).get(pk=member_id))
    member.tier = rule_cache.tier_by_id(member.tier_id)
    return member


def _buyer_flags_sql(names: tuple[str, ...]) -> str:
    """The buyer annotations as one SELECT of a boolean array over the member $1 (for the earn
    statement, which runs it under the member's lock). Built once per process from the same
    expressions `buyer_lock` annotates, their parameters inlined (constants of our code)."""
    if not names:
        return ""
    if (cached := _flags_sql_cache.get(names)) is not None:
        return cached
    query = (Member.objects.annotate(**{name: buyer_annotations[name]() for name in names})
             .values_list(*names).order_by().query)
    sql, params = query.sql_with_params()
    table = connection.ops.quote_name(Member._meta.db_table)
    assert sql.endswith(f"FROM {table}"), sql
    columns = ", ".join(f"flags.{connection.ops.quote_name(name)}" for name in names)
    composed = connection.ops.compose_sql(f"{sql} WHERE {table}.{connection.ops.quote_name('id')} = %s", [*params, 0])
    # The member id is the statement's parameter $1: the 0 inlined last stands for it.
    assert composed.endswith(" = 0"), composed
    flags_sql = f"SELECT ARRAY[{columns}]::boolean[] FROM ({composed[:-1]}$1) AS flags"  # noqa: S608 - ours
    _flags_sql_cache[names] = flags_sql
    return flags_sql


_flags_sql_cache: dict[tuple[str, ...], str] = {}

# The buyer flags as a function of their own, installed after every migrate from the annotations
# registered then: the earn statement calls it, and PostgreSQL keeps its plan for the session. Run
# as dynamic SQL instead, the flags' SELECT was planned again for every purchase (0.4 ms, a fifth
# of the database's work for an earn).
BUYER_FLAGS_FUNCTION = "rewards_buyer_flags"


def _flags_function_body(names: tuple[str, ...]) -> str:
    return f" BEGIN RETURN ({_buyer_flags_sql(names)}); END "


def buyer_flags_install(*, using: str = DEFAULT_DB_ALIAS, **_signal) -> None:
    """post_migrate: (re)create the buyer flags function from the annotations registered now."""
    names = tuple(buyer_annotations)
    if not names:
        return
    with connections[using].cursor() as cursor:
        cursor.execute(f"CREATE OR REPLACE FUNCTION {BUYER_FLAGS_FUNCTION}(bigint) RETURNS boolean[] "
                       f"LANGUAGE plpgsql STABLE AS $flags${_flags_function_body(names)}$flags$")
    _flags_function_matches.clear()


def _flags_argument(names: tuple[str, ...]) -> str:
    """The earn function's `p_flags_sql`: the installed function when its body is this process's
    annotations (checked once per process), else the flags' SELECT itself."""
    if not names:
        return ""
    matches = _flags_function_matches.get(names)
    if matches is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)",
                           [f"{BUYER_FLAGS_FUNCTION}(bigint)"])
            row = cursor.fetchone()
        matches = _flags_function_matches[names] = row is not None and row[0] == _flags_function_body(names)
    return BUYER_FLAGS_FUNCTION if matches else _buyer_flags_sql(names)


_flags_function_matches: dict[tuple[str, ...], bool] = {}


def purchase_and_member_lock(purchase_id: int) -> tuple[Member, Purchase]:
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


def require_active(member: Member) -> None:
    if member.status != Member.Status.ACTIVE:
        raise MemberNotActive(status=member.get_status_display())


# --- Expiry date of a credit -------------------------------------------------------------------

def credit_expiry(at: datetime) -> datetime | None:
    """N months later on the calendar of the programme's time zone (Europe/Berlin): points earned
    at 00:30 on 15 July expire at 00:30 on 15 January, not at 23:30 on 14 January, as adding the
    months in UTC across a daylight-saving change would give; 31 August ends on 28/29 February."""
    months = settings.LOYALTY_POINTS_EXPIRY_MONTHS
    if months <= 0:
        return None
    # Arithmetic on an aware datetime keeps its wall-clock time; its UTC offset follows the date.
    return at.astimezone(ZoneInfo(settings.TIME_ZONE)) + relativedelta(months=months)


# --- Events ------------------------------------------------------------------------------------

def _event_class(kind: str, points: int) -> type[PointsChanged]:
    if kind == PointEntry.Kind.EXPIRE:
        return PointsExpired
    return PointsEarned if points > 0 else PointsSpent


def points_event(*, member_id: int, kind: str, points: int, balance: int, purchase_id: int | None = None,
                 redemption_id: int | None = None, partner_id: int | None = None) -> PointsChanged:
    return _event_class(kind, points)(member_id=member_id, partner_id=partner_id, kind=kind, points=abs(points),
                                      balance=balance, purchase_id=purchase_id, redemption_id=redemption_id)


# --- The one place that writes an entry and moves a balance ------------------------------------

def post_entry(
    member: Member, *, kind: str, points: int, reason: str | StoredText = "", purchase: Purchase | None = None,
    source: str = "", reference: str = "", created_by: AbstractBaseUser | None = None, at: datetime | None = None,
    partner_id: int | None = None, redemption_id: int | None = None, member_fields: dict[str, Any] | None = None,
) -> PointEntry:
    """Insert one entry, move the cached balance and publish the event. The caller holds the
    member's lock. `member_fields` are further columns of the member row to set in the same
    UPDATE (the purchase statistics): every update of that row writes a new version of it, and
    of its indexes, so a purchase pays for one."""
    entry = _insert_entry(member, kind=kind, points=points, reason=reason, purchase=purchase, source=source,
                          reference=reference, created_by=created_by, at=at)
    Member.objects.filter(pk=member.pk).update(points_balance=F("points_balance") + points, **(member_fields or {}))
    member.points_balance += points
    publish(points_event(member_id=member.pk, kind=kind, points=points, balance=member.points_balance,
                         purchase_id=purchase.pk if purchase is not None else None, redemption_id=redemption_id,
                         partner_id=partner_id))
    return entry


def _insert_entry(member: Member, *, kind: str, points: int, reason: str | StoredText = "",
                  purchase: Purchase | None = None, source: str = "", reference: str = "",
                  created_by: AbstractBaseUser | None = None, at: datetime | None = None) -> PointEntry:
    assert points != 0, "a ledger entry moves points"
    if member.points_balance + points < 0:
        raise InsufficientPoints(available=member.points_balance, requested=-points)
    at = at or timezone.now()
    text, code, params = text_columns(reason)
    entry = PointEntry(
        member=member, kind=kind, points=points, reason=text, reason_code=code, reason_params=params,
        purchase=purchase, source=source,
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


def _evaluate_tier(member: Member, **context: Any) -> None:
    from .tiers import tier_evaluate  # the tier engine reads the ledger: imported when used

    tier_evaluate(member=member, **context)


# --- A purchase's earn in one statement (rewards.ledger_sql) -------------------------------------

@dataclass(frozen=True)
class EarnRequest:
    """What `purchase_earn_statement` writes: a purchase (rewards.purchases computes it)."""

    member_id: int
    partner_id: int
    store_id: int | None
    channel: str
    order_reference: str
    amount: Decimal
    currency: str
    occurred_at: datetime
    now: datetime  # the purchase's and the relation's created_at
    hold: bool  # the points are held for the return window (points_pending), no entry yet
    available_at: datetime
    skus: list[str]
    categories: list[str]
    quantities: list[int]
    amounts: list[Decimal]
    variants_json: str  # tier id ("" none) -> [total, [line points], [[kind, rule id, tier id, points]]]
    entry_at: datetime
    reason: str | StoredText
    eur: Decimal
    recent: bool  # within the last 12 months: counts in spend_12m and purchases_12m
    python_flags: tuple[str, ...]  # buyer annotations that need Python (bonus providers): 'fallback'
    evaluate_tiers: list[int]  # tier ids (0: none) whose holders may reach a higher tier
    tier_since: datetime
    tier_until: datetime


@dataclass(frozen=True)
class EarnAnswer:
    status: str  # created, existing, conflict, inactive, missing, fallback
    purchase_id: int | None
    public_id: Any
    member_status: str | None
    tier_id: int | None
    flags: dict[str, bool]
    line_ids: list[int]
    breakdown_ids: list[int]
    balance: int | None
    qualifying: int | None


_EARN_TYPES = ("bigint", "bigint", "bigint", "text", "text", "numeric", "text", "timestamptz", "timestamptz", "boolean",
               "timestamptz", "text[]", "text[]", "integer[]", "numeric[]", "jsonb", "timestamptz", "timestamptz",
               "text", "text", "jsonb", "numeric", "boolean", "text", "integer[]", "bigint[]", "timestamptz",
               "timestamptz")
_EARN_CALL = "SELECT * FROM rewards_purchase_earn(" + ", ".join(f"%s::{kind}" for kind in _EARN_TYPES) + ")"  # noqa: S608


def _reason_columns(reason: str | StoredText) -> tuple[str, str, str]:
    """The entry's text, text key and parameters (JSON) as `_insert_entry` stores them."""
    text, code, params = text_columns(reason)
    return text, code, json.dumps(params)


def purchase_earn_statement(request: EarnRequest) -> EarnAnswer:
    """Lock the buyer and record the purchase with its points in one round trip (the function of
    rewards.ledger_sql: the same writes, checks and lock order as `rewards.purchases.purchase_record`,
    which stays the specification). The caller publishes the events and runs the tier engine."""
    names = tuple(buyer_annotations)
    positions = [names.index(name) + 1 for name in request.python_flags if name in names]
    params = [
        request.member_id, request.partner_id, request.store_id, request.channel, request.order_reference,
        request.amount, request.currency, request.occurred_at, request.now, request.hold, request.available_at,
        request.skus, request.categories, request.quantities, request.amounts, request.variants_json,
        request.entry_at, credit_expiry(request.entry_at), *_reason_columns(request.reason), request.eur,
        request.recent,
        _flags_argument(names), positions, request.evaluate_tiers, request.tier_since, request.tier_until,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_EARN_CALL, params)
        (status, purchase_id, public_id, member_status, tier_id, flags, line_ids, breakdown_ids, balance,
         qualifying) = cursor.fetchone()
    return EarnAnswer(status=status, purchase_id=purchase_id, public_id=public_id, member_status=member_status,
                      tier_id=tier_id, flags=dict(zip(names, flags or [False] * len(names), strict=True)),
                      line_ids=line_ids or [], breakdown_ids=breakdown_ids or [], balance=balance,
                      qualifying=qualifying)


# --- Credits and debits used by the other apps -------------------------------------------------

@transaction.atomic
def points_credit(
    *, member_id: int, points: int, kind: str = PointEntry.Kind.BONUS, reason: str | StoredText,
    source: str = "", reference: str = "", created_by: AbstractBaseUser | None = None,
) -> PointEntry:
    """Give points (bonus, refund, goodwill). With a reference, a repeat returns the first entry."""
    if points <= 0:
        raise InvalidPurchase(detail=_("points must be positive"))
    member = member_lock(member_id)
    if existing := _existing_entry(source, reference, member_id=member.pk, points=points):
        return existing
    entry = post_entry(member, kind=kind, points=points, reason=reason, source=source, reference=reference,
                       created_by=created_by)
    if kind in QUALIFYING_KINDS:
        _evaluate_tier(member)
    return entry


@transaction.atomic
def points_debit(
    *, member_id: int, points: int, kind: str = PointEntry.Kind.REDEEM, reason: str | StoredText,
    source: str = "", reference: str = "", created_by: AbstractBaseUser | None = None,
) -> PointEntry:
    """Take points (a redemption). Checked after the lock: two debits can't both pass."""
    if points <= 0:
        raise InvalidPurchase(detail=_("points must be positive"))
    member = member_lock(member_id)
    if existing := _existing_entry(source, reference, member_id=member.pk, points=-points):
        return existing
    require_active(member)
    return post_entry(member, kind=kind, points=-points, reason=reason, source=source, reference=reference,
                      created_by=created_by)


@transaction.atomic
def points_adjust(*, member_id: int, points: int, reason: str | StoredText,
                  staff_user: AbstractBaseUser | None) -> PointEntry:
    """A staff correction with a reason (staff's free text, or a system text); it may not take
    the balance below zero."""
    if not str(reason).strip():
        raise ReasonRequired()
    if points == 0:
        raise InvalidPurchase(detail=_("an adjustment must change the balance"))
    member = member_lock(member_id)
    return post_entry(member, kind=PointEntry.Kind.ADJUST, points=points,
                      reason=reason if isinstance(reason, StoredText) else reason.strip(),
                      source="staff", created_by=staff_user)


def points_transfer(*, duplicate: Member, survivor: Member, reason: str | StoredText) -> int:
    """A merge moves the duplicate's whole balance to the survivor as a pair of TRANSFER entries
    (the ledger is never edited). The caller holds both locks (`members_lock`). Returns the points."""
    points = duplicate.points_balance
    if points > 0:
        post_entry(duplicate, kind=PointEntry.Kind.TRANSFER, points=-points, reason=reason)
        post_entry(survivor, kind=PointEntry.Kind.TRANSFER, points=points, reason=reason)
    return points


# --- Expiry: one set-based job -------------------------------------------------------------------

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
        INSERT INTO rewards_pointentry (member_id, kind, points, created_at, expires_at, reason, reason_code,
                                        reason_params, source, reference)
        SELECT id, 'expire', -amount, %(due_at)s, NULL, %(reason)s, %(reason_code)s, %(reason_params)s::jsonb, '', ''
        FROM due WHERE amount > 0
        RETURNING member_id, points
    )
    UPDATE members_member m SET points_balance = m.points_balance + e.points
    FROM entries e WHERE m.id = e.member_id AND {_IN_BATCH}
    RETURNING m.id, -e.points, m.points_balance
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
        text, code, params = text_columns(stored_text("points-expired"))
        cursor.execute(_EXPIRE_BATCH_SQL, {**batch, "due_at": now, "reason": text, "reason_code": code,
                                           "reason_params": json.dumps(params)})
        expired = cursor.fetchall()
    publish([PointsExpired(member_id=member_id, kind=PointEntry.Kind.EXPIRE, points=points, balance=balance)
             for member_id, points, balance in expired])
    return len(expired), sum(points for _member_id, points, _balance in expired)


# --- Many credits at once: imports and campaigns -------------------------------------------------
#
# `points_credit` books one credit per call. An import of a million opening balances can't afford
# a round trip per member, so `points_credit_bulk` does the same for a whole batch with a constant
# number of statements: (1) lock every member of the batch in primary-key order; (2) look up which
# (source, reference) pairs are already booked: a repeat is skipped (idempotent re-import), the same
# reference with another member or another number of points is refused (`ReferenceConflict`),
# exactly like `points_credit`; (3) insert the new entries in one COPY, then move the balances in
# one `UPDATE members_member … FROM unnest(…)` join (arrays instead of a VALUES list: one statement
# for any batch size, no limit of 65,535 bind parameters).

@dataclass(frozen=True)
class BulkCredit:
    member_id: int
    points: int
    reference: str = ""
    reason: str | StoredText = ""  # empty: the batch's reason


@dataclass(frozen=True)
class BulkCreditResult:
    created: int  # entries written now
    already_booked: int  # references that were booked before (a repeat): nothing written
    points: int  # points credited now


def _booked(source: str, references: list[str]) -> dict[str, tuple[int, int]]:
    """reference -> (member id, points) of the entries already booked under `source`.

    `reference <> ''` repeats the unique index's condition: PostgreSQL can't prove it from a long
    IN list by itself and would scan the whole ledger instead of using the index."""
    rows = select_in("SELECT reference, member_id, points FROM rewards_pointentry "
                     "WHERE source = %s AND reference <> '' AND reference {in}", references, [source])
    return {reference: (member_id, points) for reference, member_id, points in rows}


def _checked_references(credits: Sequence[BulkCredit], source: str) -> list[str]:
    """The batch's references; refuses a credit that isn't positive or a reference given twice."""
    if any(credit.points <= 0 for credit in credits):
        raise InvalidPurchase(detail=_("points must be positive"))
    references = [credit.reference for credit in credits if credit.reference]
    if len(references) != len(set(references)):
        duplicate = next(ref for ref in references if references.count(ref) > 1)
        raise ReferenceConflict(reference=f"{source}:{duplicate}")
    return references


def _per_member(credits: Sequence[BulkCredit]) -> dict[int, int]:
    per_member: dict[int, int] = defaultdict(int)
    for credit in credits:
        per_member[credit.member_id] += credit.points
    return per_member


@transaction.atomic
def points_credit_bulk(
    *, credits: Sequence[BulkCredit], source: str, reason: str | StoredText, kind: str = PointEntry.Kind.BONUS,
    created_by: AbstractBaseUser | None = None, at: datetime | None = None,
) -> BulkCreditResult:
    """Credit many members at once (see above). All or nothing: an invalid or conflicting credit
    raises and the whole batch is rolled back with the caller's transaction."""
    if not credits:
        return BulkCreditResult(created=0, already_booked=0, points=0)
    references = _checked_references(credits, source)
    at = at or timezone.now()

    member_ids = sorted({credit.member_id for credit in credits})
    found = _lock_member_ids(member_ids)
    if len(found) != len(member_ids):
        missing = sorted(set(member_ids) - set(found))[:5]
        raise Member.DoesNotExist(f"members not found: {missing}")

    # After the locks: a concurrent import of the same reference has committed or is waiting.
    booked = _booked(source, references) if references else {}
    todo: list[BulkCredit] = []
    for credit in credits:
        previous = booked.get(credit.reference) if credit.reference else None
        if previous is None:
            todo.append(credit)
        elif previous != (credit.member_id, credit.points):
            raise ReferenceConflict(reference=f"{source}:{credit.reference}")
    if todo:
        _insert_entries(todo, kind=kind, source=source, reason=reason, created_by=created_by, at=at)
        per_member = _per_member(todo)
        balances = _move_balances(per_member)
        publish([points_event(member_id=member_id, kind=kind, points=points, balance=balances[member_id])
                 for member_id, points in per_member.items()])
        if kind in QUALIFYING_KINDS:
            _evaluate_tiers(set(per_member))
    return BulkCreditResult(created=len(todo), already_booked=len(credits) - len(todo),
                            points=sum(credit.points for credit in todo))


def points_open_bulk(
    *, credits: Sequence[BulkCredit], source: str, reason: str | StoredText, kind: str = PointEntry.Kind.ADJUST,
    created_by: AbstractBaseUser | None = None, at: datetime | None = None,
) -> BulkCreditResult:
    """Opening balances of members the caller inserted in this transaction with `points_balance`
    already equal to their credits: only the entries are left to write.

    Why not `points_credit_bulk`: its UPDATE of the balances writes every new member a second
    time, and an UPDATE costs as much as the INSERT (a new row version, an entry in every index,
    the trigram ones too), half of a large import's database time. Nobody else can see (or lock)
    rows inserted by this transaction, so there is nothing to lock either. The invariant is
    checked, not trusted: a member whose balance isn't its credits raises, and the caller's
    transaction rolls back. References must be new (a new member has nothing booked yet).

    In two steps, `opening_balances_plan` (no database) and `opening_balances_book`, for a caller
    that can do the first while the connection is busy with something else (an import)."""
    return opening_balances_book(opening_balances_plan(
        credits=credits, source=source, reason=reason, kind=kind,
        created_by_id=created_by.pk if created_by is not None else None, at=at))


@dataclass(frozen=True)
class OpeningBalances:
    """What `opening_balances_book` writes and announces, worked out by `opening_balances_plan`."""

    source: str
    kind: str
    references: list[str]
    entries: CopyData | None  # formatted for COPY
    per_member: dict[int, int]  # member id -> points (and so its balance)
    events: list[PointsChanged]


def opening_balances_plan(
    *, credits: Sequence[BulkCredit], source: str, reason: str | StoredText, kind: str = PointEntry.Kind.ADJUST,
    created_by_id: int | None = None, at: datetime | None = None,
) -> OpeningBalances:
    """The first step of `points_open_bulk`: checks the credits and formats the entries and the
    events, without the database (so it may run while another thread uses the connection)."""
    references = _checked_references(credits, source)
    at = at or timezone.now()
    per_member = _per_member(credits)
    rows = _entry_rows(credits, kind=kind, source=source, reason=reason, staff_id=created_by_id, at=at)
    entries = copy_data(PointEntry, ENTRY_FIELDS, rows, now=at) if rows else None
    # Each member's balance is the sum of its credits: `opening_balances_book` checks it before announcing.
    events = [points_event(member_id=member_id, kind=kind, points=points, balance=points)
              for member_id, points in per_member.items()]
    return OpeningBalances(source=source, kind=kind, references=references, entries=entries, per_member=per_member,
                           events=events)


@transaction.atomic
def opening_balances_book(plan: OpeningBalances) -> BulkCreditResult:
    """The second step of `points_open_bulk`: writes the entries, checks the balances, announces."""
    if plan.entries is None:
        return BulkCreditResult(created=0, already_booked=0, points=0)
    if booked := _booked(plan.source, plan.references):
        raise ReferenceConflict(reference=f"{plan.source}:{next(iter(booked))}")
    insert_copy_data(plan.entries)
    _check_balances(plan.per_member)
    publish(plan.events)
    if plan.kind in QUALIFYING_KINDS:
        _evaluate_tiers(set(plan.per_member))
    return BulkCreditResult(created=plan.entries.rows, already_booked=0, points=sum(plan.per_member.values()))


def _check_balances(per_member: dict[int, int]) -> None:
    """Every member's balance equals its credits (members with entries from before fail too)."""
    ids, id_values = pg_array(list(per_member))
    points, point_values = pg_array(list(per_member.values()))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT v.id FROM unnest({ids}, {points}) AS v(id, points)
               LEFT JOIN members_member m ON m.id = v.id
               WHERE m.id IS NULL OR m.points_balance <> v.points
                  OR EXISTS (SELECT 1 FROM rewards_pointentry e WHERE e.member_id = v.id
                             GROUP BY e.member_id HAVING SUM(e.points) <> v.points)
               LIMIT 5""",  # noqa: S608 - pg_array gives placeholders, the values are parameters
            [id_values, point_values],
        )
        wrong = [row[0] for row in cursor.fetchall()]
    if wrong:
        raise ValueError(f"opening balances differ from their credits for members {wrong}")


ENTRY_FIELDS = ("member_id", "kind", "points", "created_at", "expires_at", "reason", "reason_code", "reason_params",
                "source", "reference", "created_by_id")


def _insert_entries(credits: list[BulkCredit], *, kind: str, source: str, reason: str | StoredText,
                    created_by: AbstractBaseUser | None, at: datetime) -> None:
    """One COPY (core.db.insert_rows) for the whole batch."""
    insert_rows(PointEntry, ENTRY_FIELDS, _entry_rows(credits, kind=kind, source=source, reason=reason,
                                                      staff_id=created_by.pk if created_by is not None else None,
                                                      at=at), now=at)


def _entry_rows(credits: Sequence[BulkCredit], *, kind: str, source: str, reason: str | StoredText,
                staff_id: int | None, at: datetime) -> list[tuple]:
    """The credits' entries as ENTRY_FIELDS."""
    expires_at = credit_expiry(at)
    text, code, params = text_columns(reason)
    # The batch's parameters as JSON once, not once per entry (psycopg dumps each row's value).
    batch_reason = (text, code, Jsonb(params, dumps=functools.partial(_dumped, json.dumps(params))))
    return [(credit.member_id, kind, credit.points, at, expires_at,
             *(text_columns(credit.reason) if credit.reason else batch_reason), source, credit.reference, staff_id)
            for credit in credits]


def _dumped(text: str, _value: Any) -> str:
    return text


def _move_balances(per_member: dict[int, int]) -> dict[int, int]:
    """Move the locked members' balances; returns member id -> balance after."""
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE members_member m SET points_balance = m.points_balance + v.points
               FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, points) WHERE m.id = v.id
               RETURNING m.id, m.points_balance""",
            [list(per_member), list(per_member.values())],
        )
        return dict(cursor.fetchall())


def _evaluate_tiers(member_ids: set[int]) -> None:
    """Qualifying credits can lift a tier, as in `points_credit` (one query per member: imports
    use a non-qualifying kind and never get here)."""
    for member in Member.objects.filter(pk__in=member_ids).select_related("tier").order_by("pk"):
        _evaluate_tier(member)


# --- Seeding synthetic data (manage.py seed_bench) -----------------------------------------------

# The members with ids %(first)s..%(last)s get the sum of their entries as their balance.
BALANCES_FROM_ENTRIES_SQL = """
    UPDATE members_member m SET points_balance = s.total
    FROM (SELECT member_id, sum(points) AS total FROM rewards_pointentry
          WHERE member_id BETWEEN %(first)s AND %(last)s GROUP BY member_id) s
    WHERE m.id = s.member_id"""
