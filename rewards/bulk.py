"""Many credits at once: the ledger service for imports and other set-based jobs.

`points_credit` books one credit per call: lock the member, insert the entry, move the cached
balance. An import of a million opening balances can't afford a round trip per member, so
`points_credit_bulk` does the same for a whole batch with a constant number of statements:

1. lock every member of the batch (`SELECT … FOR UPDATE`, in primary-key order, the order every
   other service uses, so we can't deadlock with them);
2. look up which (source, reference) pairs are already booked: a repeat of the same credit is
   skipped (idempotent re-import), the same reference with another member or another number of
   points is refused (`ReferenceConflict`), exactly like `points_credit`;
3. insert the new entries in one INSERT, then move the balances in one
   `UPDATE members_member … FROM unnest(…)` join.

Same invariant as `rewards.services._post_entry`: entries and balances change in one transaction
while the member rows are locked, so `points_balance == SUM(points)` holds for every member
at every commit. (The join reads arrays instead of a VALUES list: one statement for any batch
size, no limit of 65,535 bind parameters.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import insert_rows, pg_array, select_in
from core.errors import ReferenceConflict
from members.models import Member
from rewards.errors import InvalidPurchase

from .models import PointEntry
from .services import QUALIFYING_KINDS, credit_expiry


@dataclass(frozen=True)
class BulkCredit:
    member_id: int
    points: int
    reference: str = ""
    reason: str = ""  # empty: the batch's reason


@dataclass(frozen=True)
class BulkCreditResult:
    created: int  # entries written now
    already_booked: int  # references that were booked before (a repeat): nothing written
    points: int  # points credited now


def _lock_members(member_ids: list[int]) -> list[int]:
    """Lock in primary-key order; returns the ids found."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM members_member WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [member_ids])
        return [row[0] for row in cursor.fetchall()]


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


@transaction.atomic
def points_credit_bulk(
    *, credits: Sequence[BulkCredit], source: str, reason: str, kind: str = PointEntry.Kind.BONUS,
    created_by: AbstractBaseUser | None = None, at: datetime | None = None,
) -> BulkCreditResult:
    """Credit many members at once (see the module docstring). All or nothing: an invalid or
    conflicting credit raises and the whole batch is rolled back with the caller's transaction."""
    if not credits:
        return BulkCreditResult(created=0, already_booked=0, points=0)
    references = _checked_references(credits, source)
    at = at or timezone.now()

    member_ids = sorted({credit.member_id for credit in credits})
    found = _lock_members(member_ids)
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
        _move_balances(todo)
        if kind in QUALIFYING_KINDS:
            _evaluate_tiers({credit.member_id for credit in todo})
    return BulkCreditResult(created=len(todo), already_booked=len(credits) - len(todo),
                            points=sum(credit.points for credit in todo))


@transaction.atomic
def points_open_bulk(
    *, credits: Sequence[BulkCredit], source: str, reason: str, kind: str = PointEntry.Kind.ADJUST,
    created_by: AbstractBaseUser | None = None, at: datetime | None = None,
) -> BulkCreditResult:
    """Opening balances of members the caller inserted in this transaction with `points_balance`
    already equal to their credits: only the entries are left to write.

    Why not `points_credit_bulk`: its UPDATE of the balances writes every new member a second
    time, and an UPDATE costs as much as the INSERT (a new row version, an entry in every index,
    the trigram ones too), half of a large import's database time. Nobody else can see (or lock)
    rows inserted by this transaction, so there is nothing to lock either. The invariant is
    checked, not trusted: a member whose balance isn't its credits raises, and the caller's
    transaction rolls back. References must be new (a new member has nothing booked yet)."""
    if not credits:
        return BulkCreditResult(created=0, already_booked=0, points=0)
    references = _checked_references(credits, source)
    if booked := _booked(source, references):
        raise ReferenceConflict(reference=f"{source}:{next(iter(booked))}")
    at = at or timezone.now()
    _insert_entries(list(credits), kind=kind, source=source, reason=reason, created_by=created_by, at=at)
    _check_balances(credits)
    if kind in QUALIFYING_KINDS:
        _evaluate_tiers({credit.member_id for credit in credits})
    return BulkCreditResult(created=len(credits), already_booked=0, points=sum(credit.points for credit in credits))


def _check_balances(credits: Sequence[BulkCredit]) -> None:
    """Every member's balance equals its credits (members with entries from before fail too)."""
    per_member: dict[int, int] = defaultdict(int)
    for credit in credits:
        per_member[credit.member_id] += credit.points
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


def _insert_entries(credits: list[BulkCredit], *, kind: str, source: str, reason: str,
                    created_by: AbstractBaseUser | None, at: datetime) -> None:
    """One COPY (core.db.insert_rows) for the whole batch."""
    expires_at = credit_expiry(at)
    staff_id = created_by.pk if created_by is not None else None
    insert_rows(PointEntry, ("member_id", "kind", "points", "created_at", "expires_at", "reason", "source", "reference",
                             "created_by_id"),
                [(credit.member_id, kind, credit.points, at, expires_at, (credit.reason or reason)[:255], source,
                  credit.reference, staff_id) for credit in credits], now=at)


def _move_balances(credits: list[BulkCredit]) -> None:
    per_member: dict[int, int] = defaultdict(int)
    for credit in credits:
        per_member[credit.member_id] += credit.points
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE members_member m SET points_balance = m.points_balance + v.points
               FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, points) WHERE m.id = v.id""",
            [list(per_member), list(per_member.values())],
        )


def _evaluate_tiers(member_ids: set[int]) -> None:
    """Qualifying credits can lift a tier, as in `points_credit` (one query per member: imports
    use a non-qualifying kind and never get here)."""
    from members.services import tier_evaluate

    for member in Member.objects.filter(pk__in=member_ids).select_related("tier").order_by("pk"):
        tier_evaluate(member=member)
