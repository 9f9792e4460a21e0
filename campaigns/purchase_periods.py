"""Purchase counts, spend and average order over "the last N days" for segments, read mostly
from the monthly rollup (rewards.MemberMonth) instead of every purchase of the period.

A period starts at a moment (`since`, day-exact) and runs to the end of the data. Its purchases
are the rollup's whole months from the first month boundary on (the current month included,
and anything after `now`), plus the part of the first, cut month that lies after `since`, which
is read from the purchases themselves. When less than half of that first month lies before
`since`, the month comes from the rollup too and the purchases before `since` are taken off
as negative rows: either way at most half a month of purchases is read (purchase_time index).

Spend is converted to EUR at the rates of the day (numeric, exact), so the result equals
SUM(`segments.eur_amount()`) over the purchases; the average is compared without dividing
(spend >= x * purchases), which for exact numerics is the same test as AVG >= x.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

SQL_OPERATORS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def period_rows(since: datetime) -> tuple[str, list]:
    """SQL for rows (member_id, currency, purchases, net_amount) whose sums per member are the
    member's purchases with occurred_at >= since: count, and amount net of returns per currency."""
    from rewards.models import MemberMonth, Purchase

    first = month_start(since)
    if since == first:
        rollup_from, edge, sign = first, None, 1
    elif since - first < next_month(first) - since:
        rollup_from, edge, sign = first, (first, since), -1  # the whole month, less what came before since
    else:
        rollup_from, edge, sign = next_month(first), (since, next_month(first)), 1
    # Table names and constants only: every value is a parameter.
    sql = ("SELECT member_id, currency, purchases, net_amount "  # noqa: S608
           f"FROM {MemberMonth._meta.db_table} WHERE month >= %s")
    params: list = [rollup_from.date()]
    if edge is not None:
        sql += (f" UNION ALL SELECT member_id, currency, {sign}, {sign} * (amount - returned_amount) "  # noqa: S608
                f"FROM {Purchase._meta.db_table} WHERE occurred_at >= %s AND occurred_at < %s")
        params += list(edge)
    return sql, params


def eur_total_sql() -> tuple[str, list]:
    """SUM of the net amounts in EUR over grouped period rows. One converted sum, not one sum per
    currency: a grouped row is a whole month, so the conversion runs far less often than per
    purchase, and one aggregate state per member keeps the hash table small (4 MB work_mem)."""
    rates = [(code, Decimal(str(rate))) for code, rate in settings.LOYALTY_CURRENCY_TO_EUR.items()
             if Decimal(str(rate)) != 1]
    if not rates:
        return "sum(net_amount)", []
    cases = " ".join("WHEN %s THEN net_amount * %s" for _ in rates)
    return f"sum(CASE currency {cases} ELSE net_amount END)", [value for pair in rates for value in pair]


def compare_sql(expression: str, expression_params: list, operator: str, value, scale: str = "") -> tuple[str, list]:
    """`expression` compared with the condition's value (times `scale`, an SQL expression)."""
    factor = f" * {scale}" if scale else ""
    if operator == "between":
        return (f"({expression} >= %s{factor} AND {expression} <= %s{factor})",
                [*expression_params, value[0], *expression_params, value[1]])
    return f"({expression} {SQL_OPERATORS[operator]} %s{factor})", [*expression_params, value]


def members_sql(since: datetime, measure: str, operator: str, value, *, negate: bool = False) -> tuple[str, list]:
    """SELECT member_id of the members whose purchases since `since` satisfy (or, with `negate`,
    fail) the comparison. `measure` is "purchases", "spend" or "average_order". Only members
    with purchases in the period are listed: for an average that is the rule (no purchase, no
    average); for counts and sums the caller handles the members at zero."""
    rows, params = period_rows(since)
    if measure == "purchases":
        test, test_params = compare_sql("sum(purchases)", [], operator, value)
    else:
        total, total_params = eur_total_sql()
        scale = "sum(purchases)" if measure == "average_order" else ""
        test, test_params = compare_sql(f"({total})", total_params, operator, value, scale)
    if negate:
        test = f"NOT {test}"
    if measure == "average_order":
        # A cut month taken off as negative rows can leave a member at zero purchases: no average.
        test = f"sum(purchases) > 0 AND {test}"
    # The rows sorted by member first: the grouping then streams (a sort and a GroupAggregate).
    # Without the order the planner, which cannot estimate the members of a UNION ALL (it
    # assumes 200), chose per-worker hash tables of ~600 bytes per member, sorted and merged
    # them again (200,000 members: 0.48 s, sorted 0.30 s); at a million it sorts either way.
    return (f"SELECT member_id FROM ({rows} ORDER BY member_id) AS period "  # noqa: S608
            f"GROUP BY member_id HAVING {test}",
            [*params, *test_params])
