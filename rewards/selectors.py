"""Reads over the ledger that cross apps or need hand-written SQL."""

from __future__ import annotations

from django.db import connection

_BALANCE_MISMATCH_SQL = """
    SELECT m.id, m.points_balance, COALESCE(e.total, 0)
    FROM members_member m
    LEFT JOIN (SELECT member_id, SUM(points) AS total FROM rewards_pointentry GROUP BY member_id) e
           ON e.member_id = m.id
    WHERE m.points_balance <> COALESCE(e.total, 0)
    ORDER BY m.id
    LIMIT %s
"""

_PENDING_MISMATCH_SQL = """
    SELECT m.id, m.points_pending, COALESCE(p.total, 0)
    FROM members_member m
    LEFT JOIN (SELECT member_id, SUM(points_pending) AS total FROM rewards_purchase
               WHERE points_pending > 0 GROUP BY member_id) p
           ON p.member_id = m.id
    WHERE m.points_pending <> COALESCE(p.total, 0)
    ORDER BY m.id
    LIMIT %s
"""


def ledger_mismatches(*, limit: int = 50) -> list[tuple[int, int, int]]:
    """Members whose cached balance differs from the sum of their entries."""
    with connection.cursor() as cursor:
        cursor.execute(_BALANCE_MISMATCH_SQL, [limit])
        return [tuple(row) for row in cursor.fetchall()]


def pending_mismatches(*, limit: int = 50) -> list[tuple[int, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_MISMATCH_SQL, [limit])
        return [tuple(row) for row in cursor.fetchall()]
