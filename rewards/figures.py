"""The ledger's figures for a member, each written once in SQL over `m` (members_member).

A till asks for the balance before every sale and the expiry job computes what is due for a
million members; both need the same formulas, and an ORM query of nested subqueries costs more
to build than PostgreSQL needs to answer it. So each formula is one SQL fragment, used by the
balance answer (in the statement that reads the member), the tier rules and the expiry job.
Named parameters: `since`/`at` for the tier window, `due_at` for expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from members.models import Member

from .models import PointEntry

QUALIFYING_KINDS = (PointEntry.Kind.EARN, PointEntry.Kind.BONUS, PointEntry.Kind.REVERSAL)
_KINDS = ", ".join(f"'{kind}'" for kind in QUALIFYING_KINDS)  # constants of the model, not input


def _positive(sql: str) -> str:
    return f"(CASE WHEN {sql} > 0 THEN {sql} ELSE 0 END)"


# Points earned in the tier window, net of returns. Entries of duplicates merged into the member
# count too (an id list, not an OR across the join, which would scan the whole ledger). A return
# whose points were already spent reverses less on the ledger than it takes back (the balance
# stops at zero): its shortfall is subtracted too, or buy, redeem, return would keep a tier for
# nothing. Purchases move to the survivor on a merge, so returns are found through it.
QUALIFYING_POINTS_SQL = f"""((
    SELECT coalesce(sum(e.points), 0) FROM rewards_pointentry e
    WHERE e.member_id IN (SELECT d.id FROM members_member d WHERE d.id = m.id OR d.merged_into_id = m.id)
      AND e.kind IN ({_KINDS}) AND e.created_at >= %(since)s AND e.created_at <= %(at)s
) - (
    SELECT coalesce(sum(r.shortfall_points), 0) FROM rewards_purchasereturn r
    JOIN rewards_purchase p ON p.id = r.purchase_id
    WHERE p.member_id = m.id AND r.shortfall_points > 0 AND r.created_at >= %(since)s AND r.created_at <= %(at)s
))"""  # noqa: S608 - no input is formatted in

# What the expiry job takes by `due_at` (DESIGN's formula): max(0, credits expiring by then -
# debits other than expiry) - what already expired (expiry entries are negative).
_SPENDABLE_DUE = ("sum(CASE WHEN (e.points > 0 AND e.expires_at <= %(due_at)s) OR (e.points < 0 AND e.kind <> 'expire')"
                  " THEN e.points ELSE 0 END)")
EXPIRY_DUE_SQL = f"""(
    SELECT coalesce({_positive(_SPENDABLE_DUE)} + sum(CASE WHEN e.kind = 'expire' THEN e.points ELSE 0 END), 0)
    FROM rewards_pointentry e WHERE e.member_id = m.id
)"""  # noqa: S608


def _window(at: datetime | None) -> dict:
    at = at or timezone.now()
    return {"since": at - timedelta(days=settings.LOYALTY_TIER_WINDOW_DAYS), "at": at}


def tier_window(at: datetime) -> tuple[datetime, datetime]:
    """The tier window ending at `at`: (since, at)."""
    window = _window(at)
    return window["since"], window["at"]


def qualifying_points(member_id: int, *, at: datetime | None = None) -> int:
    """Points earned in the tier window, net of returns."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {QUALIFYING_POINTS_SQL} FROM members_member m WHERE m.id = %(member)s",  # noqa: S608
                       {**_window(at), "member": member_id})
        row = cursor.fetchone()
    return row[0] if row else 0


def expiry_due_by_member(member_ids: Sequence[int], at: datetime) -> dict[int, int]:
    """What the expiry formula takes from each member by `at` (before capping at the balance)."""
    if not member_ids:
        return {}
    placeholders = ", ".join(f"%(id{n})s" for n in range(len(member_ids)))
    params = {f"id{n}": member_id for n, member_id in enumerate(member_ids)}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT m.id, {EXPIRY_DUE_SQL} FROM members_member m "  # noqa: S608
                       f"WHERE m.id IN ({placeholders})", {**params, "due_at": at})
        return dict(cursor.fetchall())


def points_expiring_by(*, member_id: int, at: datetime) -> int:
    """Points of this member that will have expired by `at` unless spent first."""
    return max(0, expiry_due_by_member([member_id], at).get(member_id, 0))


def points_expiring_by_members(*, member_ids: Sequence[int], at: datetime) -> dict[int, int]:
    """`points_expiring_by` for many members in one query."""
    return {member_id: max(0, due) for member_id, due in expiry_due_by_member(list(member_ids), at).items()}


def points_expiring_by_moments(*, member_id: int, moments: Sequence[datetime]) -> dict[datetime, int]:
    """`points_expiring_by` at each of `moments`, in one query (the same formula, due_at per row)."""
    if not moments:
        return {}
    due_sql = EXPIRY_DUE_SQL.replace("%(due_at)s", "t.due_at")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.due_at, {due_sql} FROM members_member m, "  # noqa: S608
                       "unnest(%(moments)s::timestamptz[]) AS t(due_at) WHERE m.id = %(member)s",
                       {"moments": list(moments), "member": member_id})
        return {moment: max(0, due) for moment, due in cursor.fetchall()}


# What the balance answer reads of a member: the full row would cost more to turn into a model
# than the statement costs PostgreSQL.
_BALANCE_FIELDS = ("id", "public_id", "status", "tier_id", "points_balance", "points_pending")


def member_with_figures(*, public_id, expiring_until: datetime,
                        reachable: tuple[str, dict] | None = None) -> Member | None:
    """The member with this API id (not erased; only the fields of `_BALANCE_FIELDS` loaded) with
    `qualifying` and `expiring` points, in one statement. `reachable` is a further SQL condition
    on `m` with its named parameters: the partner API's presence or relation check
    (members.selectors), so the check costs no statement of its own."""
    columns = ", ".join(f"m.{name}" for name in _BALANCE_FIELDS)
    condition, params = reachable or ("1 = 1", {})
    # A uuid as the column stores it (a string in the URL).
    public_id = Member._meta.get_field("public_id").get_db_prep_value(public_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, {QUALIFYING_POINTS_SQL}, {_positive(EXPIRY_DUE_SQL)} "  # noqa: S608
            f"FROM members_member m WHERE m.public_id = %(member)s AND m.status <> %(erased)s AND {condition}",
            {**params, **_window(None), "due_at": expiring_until, "member": public_id,
             "erased": Member.Status.ERASED})
        row = cursor.fetchone()
    if row is None:
        return None
    member = Member.from_db(connection.alias, _BALANCE_FIELDS, row[:len(_BALANCE_FIELDS)])
    member.qualifying, member.expiring = row[len(_BALANCE_FIELDS):]
    return member
