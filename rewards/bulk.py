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
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty_site.errors import InvalidPurchase, ReferenceConflict
from members.models import Member

from .models import PointEntry
from .services import QUALIFYING_KINDS, credit_expiry

LOOKUP_BATCH = 10_000  # references per IN (…) lookup


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
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM members_member WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [member_ids])
            return [row[0] for row in cursor.fetchall()]
    return list(Member.objects.select_for_update().filter(pk__in=member_ids).order_by("pk")
                .values_list("pk", flat=True))


def _booked(source: str, references: list[str]) -> dict[str, tuple[int, int]]:
    """reference -> (member id, points) of the entries already booked under `source`."""
    booked: dict[str, tuple[int, int]] = {}
    for start in range(0, len(references), LOOKUP_BATCH):
        rows = PointEntry.objects.filter(source=source, reference__in=references[start:start + LOOKUP_BATCH])
        for reference, member_id, points in rows.values_list("reference", "member_id", "points"):
            booked[reference] = (member_id, points)
    return booked


@transaction.atomic
def points_credit_bulk(
    *, credits: Sequence[BulkCredit], source: str, reason: str, kind: str = PointEntry.Kind.BONUS,
    created_by: AbstractBaseUser | None = None, at: datetime | None = None,
) -> BulkCreditResult:
    """Credit many members at once (see the module docstring). All or nothing: an invalid or
    conflicting credit raises and the whole batch is rolled back with the caller's transaction."""
    if not credits:
        return BulkCreditResult(created=0, already_booked=0, points=0)
    if any(credit.points <= 0 for credit in credits):
        raise InvalidPurchase(detail=_("points must be positive"))
    references = [credit.reference for credit in credits if credit.reference]
    if len(references) != len(set(references)):
        duplicate = next(ref for ref in references if references.count(ref) > 1)
        raise ReferenceConflict(reference=f"{source}:{duplicate}")
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


def _insert_entries(credits: list[BulkCredit], *, kind: str, source: str, reason: str,
                    created_by: AbstractBaseUser | None, at: datetime) -> None:
    expires_at = credit_expiry(at)
    staff_id = created_by.pk if created_by is not None else None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO rewards_pointentry (member_id, kind, points, created_at, expires_at, reason, source,
                                                   reference, created_by_id)
                   SELECT v.member_id, %s, v.points, %s, %s, v.reason, %s, v.reference, %s
                   FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::varchar[])
                        AS v(member_id, points, reason, reference)""",
                [kind, at, expires_at, source, staff_id,
                 [credit.member_id for credit in credits], [credit.points for credit in credits],
                 [(credit.reason or reason)[:255] for credit in credits], [credit.reference for credit in credits]],
            )
        return
    PointEntry.objects.bulk_create(
        PointEntry(member_id=credit.member_id, kind=kind, points=credit.points, created_at=at, expires_at=expires_at,
                   reason=(credit.reason or reason)[:255], source=source, reference=credit.reference,
                   created_by_id=staff_id)
        for credit in credits
    )


def _move_balances(credits: list[BulkCredit]) -> None:
    per_member: dict[int, int] = defaultdict(int)
    for credit in credits:
        per_member[credit.member_id] += credit.points
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """UPDATE members_member m SET points_balance = m.points_balance + v.points
                   FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, points) WHERE m.id = v.id""",
                [list(per_member), list(per_member.values())],
            )
        return
    for member_id, points in per_member.items():
        Member.objects.filter(pk=member_id).update(points_balance=F("points_balance") + points)


def _evaluate_tiers(member_ids: set[int]) -> None:
    """Qualifying credits can lift a tier, as in `points_credit` (one query per member: imports
    use a non-qualifying kind and never get here)."""
    from members.services import tier_evaluate

    for member in Member.objects.filter(pk__in=member_ids).select_related("tier").order_by("pk"):
        tier_evaluate(member=member)
