"""Set-based writes and reads for large batches (imports, bulk credits): a constant number of
statements per chunk.

The ORM's `bulk_create` builds a model instance per row and one INSERT with a bind parameter per
cell; at a million members that, not the database, was the import's cost (about 1,800 rows/s).
These helpers stream rows with PostgreSQL's COPY (psycopg's `cursor.copy`), update many rows
with one `UPDATE … FROM unnest(…)` and look rows up by one array parameter.

They write rows, nothing else: which rows, and the rules (matching, consent proof, the ledger
for balances), stay with the caller, inside the caller's transaction. COPY does not skip
anything the database enforces: constraints, unique indexes and foreign keys check every row.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED
from psycopg import Copy
from psycopg.copy import FileWriter


def next_ids(model: type[models.Model], count: int) -> list[int]:
    """`count` primary keys for rows the caller inserts itself: known before the insert, so
    the rows that point to the new rows (tier history, tags, consents, ledger) need no
    RETURNING round trip."""
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        # The sequence's name is looked up once (a function in FROM), not once per id.
        cursor.execute("SELECT nextval(seq) FROM CAST(pg_get_serial_sequence(%s, 'id') AS regclass) AS seq, "
                       "generate_series(1, %s)", [table, count])
        return [row[0] for row in cursor.fetchall()]


def _default(field: models.Field, now: datetime) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


# COPY's binary format where every column has one of these types (Django's names, without the
# length): psycopg writes numbers, dates and timestamps as bytes instead of formatting text, and
# PostgreSQL reads them without parsing it; a member row cost the client about half as much.
# Binary COPY casts nothing, so the values must be of the column's type: for these types the
# importers' values are (int, bool, date, aware datetime, Decimal, str, and a dict or list for jsonb:
# psycopg's jsonb dumper encodes it, so a JSON text given for a jsonb column would be stored as a string).
BINARY_COPY_TYPES = frozenset({"bigint", "integer", "smallint", "boolean", "date", "timestamp with time zone",
                               "numeric", "varchar", "text", "uuid", "jsonb"})


def _binary_types(fields: Sequence[models.Field]) -> list[str] | None:
    """PostgreSQL type names for a binary COPY into `fields`, or None if one is not plain."""
    names = [re.sub(r"\(.*\)$", "", field.db_type(connection) or "") for field in fields]
    return names if all(name in BINARY_COPY_TYPES for name in names) else None


@dataclass(frozen=True)
class _Columns:
    table: str
    names: str  # quoted, comma-separated
    fields: list[models.Field]
    tail: tuple  # the defaults, appended to every row
    types: list[str] | None  # for a binary COPY, else None

    @property
    def copy_statement(self) -> str:
        return f"COPY {self.table} ({self.names}) FROM STDIN{' (FORMAT BINARY)' if self.types else ''}"


def _columns(model: type[models.Model], fields: Sequence[str], now: datetime) -> _Columns:
    meta = model._meta
    by_name = {field.attname: field for field in meta.concrete_fields}
    given = [by_name[name] for name in fields]
    rest = [field for field in meta.concrete_fields if field.attname not in fields and not field.primary_key]
    # A column the statement leaves out is NULL (Django creates no database defaults unless a
    # field has db_default), so columns whose default is None are not sent at all.
    defaults = [(field, _default(field, now)) for field in rest]
    sent = [(field, value) for field, value in defaults if value is not None or field.db_default is not NOT_PROVIDED]
    rest, tail = [field for field, _value in sent], tuple(value for _field, value in sent)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in (*given, *rest))
    return _Columns(quote(meta.db_table), columns, [*given, *rest], tail, _binary_types([*given, *rest]))


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]], *,
                now: datetime, ignore_conflicts: bool = False) -> None:
    """Insert `rows` (values of `fields`, attribute names such as "member_id") into `model`'s
    table. Every other column gets the model's default, computed once: a default that differs per
    row (a generated number) must be in `fields`. The primary key is generated unless given.

    `ignore_conflicts` skips rows a unique constraint refuses (INSERT … ON CONFLICT DO NOTHING,
    for rows another transaction may have written meanwhile); otherwise it is COPY."""
    columns = _columns(model, fields, now)
    tail = columns.tail
    with connection.cursor() as cursor:
        if ignore_conflicts:
            _insert_unnest(cursor, columns.table, columns.names, columns.fields, [(*row, *tail) for row in rows])
            return
        with cursor.copy(columns.copy_statement) as copy:
            _write_rows(copy, columns, rows)


@dataclass(frozen=True)
class CopyData:
    """Rows of one table formatted for COPY, to be sent later by `insert_copy_data`."""

    statement: str
    data: bytes
    rows: int


def copy_data(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]], *,
              now: datetime) -> CopyData:
    """What `insert_rows` would send for `rows`, formatted without sending it (psycopg's
    `FileWriter`): formatting is Python work that one thread can do while another thread waits
    for the connection (transfers.importers.WriteBehind). The connection is only asked for its
    type adapters, never used, so this may run while another thread uses it."""
    columns = _columns(model, fields, now)
    buffer = io.BytesIO()
    connection.ensure_connection()
    raw = connection.connection  # the driver's connection: Django's cursor would check the thread
    with raw.cursor() as cursor, Copy(cursor, binary=columns.types is not None, writer=FileWriter(buffer)) as copy:
        count = _write_rows(copy, columns, rows)
    return CopyData(columns.copy_statement, buffer.getvalue(), count)


def _write_rows(copy: Copy, columns: _Columns, rows: Iterable[Sequence[Any]]) -> int:
    """Each row with the columns' defaults appended, typed for a binary COPY; how many rows."""
    if columns.types:
        copy.set_types(columns.types)
    tail, count = columns.tail, 0
    for row in rows:
        copy.write_row((*row, *tail))
        count += 1
    return count


def insert_copy_data(copied: CopyData | None) -> None:
    """Send rows formatted by `copy_data` (nothing if there are none)."""
    if copied is None or not copied.rows:
        return
    with connection.cursor() as cursor, cursor.copy(copied.statement) as copy:
        copy.write(copied.data)


def _insert_unnest(cursor, table: str, columns: str, fields: list[models.Field], rows: list[tuple]) -> None:
    if not rows:
        return
    types = [field.db_type(connection) for field in fields]
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING",  # noqa: S608
                   [list(column) for column in zip(*rows, strict=True)])


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set `fields` of many rows at once; each row is (pk, value, value, …). A value of None
    leaves that column as it is (the import never empties a column), so rows that change
    different columns share one statement."""
    if not rows:
        return
    meta = model._meta
    by_name = {field.attname: field for field in meta.concrete_fields}
    quote = connection.ops.quote_name
    targets = [by_name[name] for name in fields]
    arrays = ", ".join([f"%s::{meta.pk.db_type(connection)}[]",
                        *(f"%s::{field.db_type(connection)}[]" for field in targets)])
    names = ", ".join(["pk", *(f"v{n}" for n in range(len(targets)))])
    assignments = ", ".join(f"{quote(field.column)} = COALESCE(v.v{n}, t.{quote(field.column)})"
                            for n, field in enumerate(targets))
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} t SET {assignments} FROM unnest({arrays}) AS v({names}) "  # noqa: S608
            f"WHERE t.{quote(meta.pk.column)} = v.pk",
            [list(column) for column in zip(*rows, strict=True)],
        )


SEPARATOR = "\x1f"  # ASCII "unit separator": not in names, numbers or e-mails (and checked)


def pg_array(values: Sequence[Any]) -> tuple[str, Any]:
    """SQL for an array of `values` and its one parameter.

    Text and integers travel as ONE string that PostgreSQL splits (`string_to_array`): psycopg
    quotes a list parameter element by element in Python, which cost more than the lookups it
    feeds. Values that contain the separator (or aren't text or integers) go as a list."""
    if all(type(value) is int for value in values):
        return "string_to_array(%s, ',')::bigint[]", ",".join(map(str, values))
    if all(type(value) is str for value in values):
        joined = SEPARATOR.join(values)
        if joined.count(SEPARATOR) == len(values) - 1 and all(values):
            return "string_to_array(%s, E'\\x1f')", joined
    return "%s", list(values)


def select_in(sql: str, values: Sequence[Any], params: Sequence[Any] = ()) -> list[tuple]:
    """Rows of `sql`, whose `{in}` stands for "in `values`" and comes after the other `params`.

    It is `= ANY(%s)` with the values as ONE array parameter: a Django `__in` of 10,000 values
    builds, quotes and parses 10,000 placeholders, which cost the import more than the query.

    Like every statement it is prepared after a few runs, on purpose: the generic plan probes
    the indexes, while a plan made for a 20,000-value array scans the whole table (a million-row
    import ran at 5,976 instead of 7,791 rows/s with unprepared lookups)."""
    if not values:
        return []
    with connection.cursor() as cursor:
        array, parameter = pg_array(values)
        cursor.execute(sql.replace("{in}", f"= ANY({array})"), [*params, parameter])
        return cursor.fetchall()
