"""The importer base class and the registry the apps fill.

Each app keeps its importers next to its models (members/importers.py, rewards/importers.py)
and registers them in its AppConfig.ready() with `register`; transfers knows none of them.
An importer reads a `Table` in chunks, cleans each row with the cell parsers
(transfers.cells), counts it in a `Report` and, in write mode, writes a chunk at a time in
the caller's transaction."""

from __future__ import annotations

import gc
import operator
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from itertools import islice
from threading import Lock
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .cells import cell_text, normalize_heading
from .errors import ImportFailed, ImportFileError
from .reading import Table
from .report import ProblemLog, Progress, Report

# Rows read, checked and written together: a constant number of statements per chunk, so fewer
# chunks are fewer round trips and plans (20,000 took 6 % less CPU than 5,000 for a member file);
# a chunk of customers stays a few dozen MB in memory.
CHUNK_ROWS = 20_000
# The first chunks are smaller (1,000 rows, then twice as many each time up to CHUNK_ROWS): a
# member import writes a chunk while it prepares the next, and PostgreSQL waited idle until
# the first full chunk was read, cleaned and prepared (1.8 s of a 100 s import).
FIRST_CHUNK_ROWS = 1_000
# A chunk ends early once its rows weigh this much (characters, plus 8 per cell for the list
# slot and the object): 20,000 ordinary rows weigh about 5 million, so only odd files are cut.
CHUNK_WEIGHT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Column:
    field: str
    label: Any  # lazy, English source text: what the template and the errors call the column
    aliases: tuple[str, ...]


# Python's cyclic garbage collector runs a young-generation pass once the containers allocated
# minus those freed pass a threshold (700 by default). An import keeps a chunk or two alive (cells,
# rows, tuples for COPY: several hundred thousand containers), so any threshold below that made
# the collector walk the same live chunks over and over: at 50,000, about 100 young and 10 middle
# passes per 400,000 rows, a fifth of the import's Python time. An import makes no reference
# cycles of its own, so what it frees goes by reference counting; the threshold only has to bound
# cyclic garbage made by anything else, and 2,000,000 containers (a few hundred MB at most) does.
# Process-wide, so overlapping imports (threads) count in.
IMPORT_GC_THRESHOLD = 2_000_000
_gc_lock = Lock()
_gc_users = 0
_gc_saved: tuple[int, ...] = ()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(IMPORT_GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


@contextmanager
def _references_checked_as_written(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Foreign keys checked as each statement ends instead of all at the commit.

    Django declares its foreign keys DEFERRABLE INITIALLY DEFERRED, so PostgreSQL queues one
    check per row written and runs them all at the commit: for a million new members about
    6.7 million checks, 25 seconds in which nothing else of the import can run. Checked per
    statement, they run in the writer's thread while the next chunk is prepared. An import writes
    what its rows refer to (members, tags) before the rows that refer to them, so it needs no
    deferral. As Django's own `check_constraints` does, the checks are deferred again afterwards
    (every deferrable constraint of the schema is one of Django's foreign keys, initially
    deferred). After an error the transaction, or its savepoint, rolls back, and so does the
    setting."""
    connection = connections[using]
    if not connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def batched(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _chunks(table: Table) -> Iterator[list]:
    """CHUNK_ROWS rows at a time (fewer at first: FIRST_CHUNK_ROWS), or fewer if they weigh more
    than CHUNK_WEIGHT (long cells)."""
    weight = table.weight
    chunk: list = []
    append = chunk.append
    start = weight()
    size = min(FIRST_CHUNK_ROWS, CHUNK_ROWS)
    for row in table.rows:
        append(row)
        if len(chunk) >= size or weight() - start > CHUNK_WEIGHT:
            yield chunk
            chunk = []
            append = chunk.append
            start = weight()
            size = min(2 * size, CHUNK_ROWS)
    if chunk:
        yield chunk


_END = object()


def read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """`items`, produced by a thread one item ahead of the consumer (close the iterator when
    done with it: that stops and joins the thread).

    Why: a write-mode import spends most of its time waiting for PostgreSQL (COPY, index
    entries, the foreign-key checks at commit), and psycopg releases the GIL while it waits, so
    reading and cleaning the next chunk meanwhile costs the import no time. Memory stays bounded:
    at most one finished item waits in the queue and one is being made. The thread works in the
    caller's language and time zone (both are per thread in Django), and what it raises is raised
    here, in order, after the items made before it."""
    handover: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    language, zone = translation.get_language(), timezone.get_current_timezone()

    def hand_over(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handover.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with translation.override(language), timezone.override(zone), closing(items):
                for item in items:
                    if not hand_over((item, None)):
                        return
        except BaseException as error:  # handed to the consumer, which raises it
            hand_over((_END, error))
            return
        hand_over((_END, None))

    worker = threading.Thread(target=produce, name="import-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handover.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        worker.join()


class WriteBehind:
    """Runs the writes of one chunk at a time in a thread, on the caller's database connection and
    in its transaction, while the caller prepares the next chunk.

    Why: PostgreSQL spends most of a member import writing (COPY, index entries, the ledger),
    and while it did, the importer's main thread waited, and while the main thread matched and
    prepared the next chunk, PostgreSQL waited; on two cores both can work at once.

    One connection, one user at a time: `submit` and `wait` first wait for the running job, so
    the caller may use the connection only after `wait` (or `submit`) returned and until it
    submits again; in between it must not touch the database. The job sees the connection as
    its own (Django's connections are per thread: the thread is handed the caller's, with its
    open transaction), and works in the caller's language and time zone. A job's error is raised
    by the next `wait` or `submit`, in the caller's thread, so it fails the import as it would
    have without the thread; `close` waits for the job and raises nothing (the caller is already
    failing, or has waited)."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS):
        self.using = using
        self.connection = connections[using]
        self.language, self.zone = translation.get_language(), timezone.get_current_timezone()
        self.thread: threading.Thread | None = None
        self.job: Callable[[], None] | None = None
        self.error: BaseException | None = None
        self.connection.inc_thread_sharing()
        self.closed = False

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        # The job done is freed here, while the next one runs: freeing a chunk's rows takes a
        # while, and the writer's thread should be writing meanwhile, not freeing.
        done, self.job = self.job, job
        self.thread = threading.Thread(target=self._work, name="import-write-behind", daemon=True)
        self.thread.start()
        del done

    def _work(self) -> None:
        connections[self.using] = self.connection
        try:
            with translation.override(self.language), timezone.override(self.zone):
                if self.job is not None:
                    self.job()
        except BaseException as error:  # raised in the caller's thread by `wait`
            self.error = error

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        self.job = None
        if not self.closed:
            self.closed = True
            self.connection.dec_thread_sharing()


class BaseImporter:
    """Reads a table in chunks; subclasses clean rows and match/write a chunk at a time.

    In write mode the caller holds one transaction around `run`; an invalid row raises
    `ImportFailed` (rolling everything back) unless `skip_invalid` is set."""

    kind = ""
    columns: tuple[Column, ...] = ()
    required: tuple[tuple[str, ...], ...] = ()  # each tuple: the file needs one of these columns
    # Who may import this kind (besides transfers.add_importjob), and columns that need more:
    # an import does what the services it stands for do, so it needs their permissions.
    permissions: tuple[str, ...] = ()
    column_permissions: dict[str, str] = {}

    def __init__(self, *, write: bool = False, skip_invalid: bool = False, staff_user: AbstractBaseUser | None = None,
                 label: str = "", options: dict | None = None, progress: Progress | None = None):
        self.write = write
        self.skip_invalid = skip_invalid
        self.staff_user = staff_user
        self.label = label
        self.options = options or {}
        self.progress = progress
        self.report = Report()
        self.mapping: list[tuple[str, int]] = []
        self.heading: dict[str, str] = {}

    # The upload form: an importer may need more than the file (purchases: their partner).
    @classmethod
    def form_fields(cls) -> dict[str, Any]:
        """Extra fields of the console's upload form (shown for every kind, as before)."""
        return {}

    @classmethod
    def clean_form(cls, data: dict, form: Any) -> None:
        """Checks of the upload form when the file is of this importer's kind (`form.add_error`)."""

    @classmethod
    def form_options(cls, data: dict) -> dict:
        """What the job's options keep of the extra fields."""
        return {}

    @classmethod
    def missing_permission(cls, user: AbstractBaseUser, fields: Iterable[str] = ()) -> str:
        """The first permission `user` lacks to import this kind with these columns, or ""."""
        needed = [*cls.permissions, *(cls.column_permissions[name] for name in fields
                                      if name in cls.column_permissions)]
        return next((permission for permission in needed if not user.has_perm(permission)), "")

    # Headings
    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Normalised heading -> field: the field's name, its label in English and German, its aliases."""
        by_alias = {}
        for column in cls.columns:
            with translation.override("en"):
                english = str(column.label)  # the exports' column names (resources), in both languages
            with translation.override("de"):
                german = str(column.label)
            for alias in (column.field, english, german, str(column.label), *column.aliases):
                by_alias[normalize_heading(alias)] = column.field
        return by_alias

    @classmethod
    def suggested_mapping(cls, headings: list[str]) -> list[str]:
        """The field each heading stands for by its name ("" where the importer doesn't know it);
        a field named twice goes to the first heading only."""
        by_alias, taken, fields = cls.aliases(), set(), []
        for heading in headings:
            target = by_alias.get(normalize_heading(heading), "") if heading else ""
            if target in taken:
                target = ""
            taken.add(target)
            fields.append(target)
        return fields

    @classmethod
    def mapping_problems(cls, headings: list[str], fields: list[str]) -> list[str]:
        """Why a column mapping (one field or "" per heading) can't be used; empty if it can."""
        from .mapping import mapping_problems

        return mapping_problems(cls, headings, fields)

    def map_headings(self, headings: list[str]) -> None:
        chosen = self.options.get("mapping")
        if chosen is not None:  # staff mapped the columns (transfers.mapping)
            if problems := self.mapping_problems(headings, chosen):
                raise ImportFileError(detail=problems[0])
            targets = [chosen[index] if index < len(chosen) else "" for index in range(len(headings))]
        else:
            by_alias = self.aliases()
            targets = [by_alias.get(normalize_heading(heading), "") for heading in headings]
        seen: set[str] = set()
        for index, (heading, target) in enumerate(zip(headings, targets, strict=True)):
            if not heading:
                continue
            if not target:
                self.report.ignored_columns.append(heading)
                continue
            if target in seen:
                raise ImportFileError(detail=_("the column “%(column)s” appears twice") % {"column": heading})
            seen.add(target)
            self.mapping.append((target, index))
            self.heading[target] = heading
            self.report.columns[heading] = target
        for alternatives in self.required:
            if not seen.intersection(alternatives):
                names = " / ".join(str(self.label_of(name)) for name in alternatives)
                raise ImportFileError(detail=_("a column %(names)s is needed") % {"names": names})
        if self.report.ignored_columns:
            self.report.warning(1, ", ".join(self.report.ignored_columns), _("these columns are not imported"))

    @classmethod
    def label_of(cls, field_name: str) -> str:
        for column in cls.columns:
            if column.field == field_name:
                return str(column.label)
        return field_name

    def column_name(self, field_name: str) -> str:
        """The heading as written in the file, for messages."""
        return self.heading.get(field_name) or self.label_of(field_name)

    # Running
    def run(self, table: Table) -> Report:
        with _fewer_collections():
            return self._run(table)

    def _run(self, table: Table) -> Report:
        self.map_headings(table.headers)
        self.prepare()
        chunks = self._cleaned_chunks(table)
        # Only when writing: a dry run hardly waits for the database, and two threads taking
        # turns at the GIL cost it more CPU than they save (measured: +15 % for a dry run).
        if self.clean_ahead and self.write:
            chunks = read_ahead(chunks)
        self.writer = WriteBehind() if self.write_behind and self.write else None
        try:
            with closing(chunks), _references_checked_as_written() if self.writer else nullcontext():
                for count, cleaned, fraction in chunks:
                    if count:
                        self.process(cleaned)
                    self.report.rows += count
                    if self.progress is not None:
                        self.progress(self.report.rows, fraction)
                self.finish()
                if self.writer is not None:
                    self.writer.wait()
        finally:
            # Whatever stops the import, the writer's thread is done with the connection before
            # the caller's transaction rolls back (or commits).
            if self.writer is not None:
                self.writer.close()
        return self.report

    def _cleaned_chunks(self, table: Table) -> Iterator[tuple[int, Any, float]]:
        """(rows, what `clean_chunk` made of them, how far reading has got) per chunk."""
        names = [name for name, _index in self.mapping]
        pick = operator.itemgetter(*(index for _name, index in self.mapping))
        width = max((index for _name, index in self.mapping), default=-1) + 1
        for chunk in _chunks(table):
            rows = []
            for line, cells in chunk:
                if not any(cell_text(cell) for cell in cells):
                    continue  # blank lines are not rows
                if len(cells) >= width:  # the usual case, in one C call
                    values = dict(zip(names, pick(cells) if len(names) > 1 else (pick(cells),), strict=True))
                else:
                    values = {name: cells[index] if index < len(cells) else "" for name, index in self.mapping}
                rows.append((line, values))
            yield len(rows), self.clean_chunk(rows) if rows else rows, table.fraction()

    def prepare(self) -> None:
        """Load small lookup tables once per file."""

    # Reading and cleaning the next chunk while this one is written: `clean_chunk` then runs in
    # a thread (see `read_ahead`), so it must not touch the database, the report or anything
    # `process` changes. Off unless an importer's `clean_chunk` is written for that.
    clean_ahead = False

    def clean_chunk(self, rows: list[tuple[int, dict]]) -> Any:
        """What `process` gets for a chunk of (line, values) rows: by default the rows themselves."""
        return rows

    def process(self, rows: Any) -> None:
        raise NotImplementedError

    # Writing a chunk in a thread while the next one is matched and prepared (`WriteBehind`):
    # `self.writer` in write mode; `process` hands it the writes and `finish` the last ones.
    write_behind = False
    writer: WriteBehind | None = None

    def finish(self) -> None:
        """Called once after the last chunk (writes still pending go to the writer here)."""

    # Outcomes
    def invalid(self, line: int, errors: list[tuple[str, str]]) -> None:
        if self.write and not self.skip_invalid:
            column, message = errors[0]
            raise ImportFailed(line=line, detail=f"{self.column_name(column) if column else ''}: {message}")
        self.report.counts["invalid"] += 1
        for column, message in errors:
            self.report.error(line, self.column_name(column) if column else "", message)

    def skipped(self, line: int, column: str, message: str) -> None:
        self.report.counts["skipped"] += 1
        self.report.skip(line, self.column_name(column) if column else "", message)

    def counted(self, outcome: str, number: int = 1) -> None:
        self.report.counts[outcome] += number


# --- The registry -------------------------------------------------------------------------

IMPORTERS: dict[str, type[BaseImporter]] = {}


def register(importer: type[BaseImporter]) -> type[BaseImporter]:
    """Called by each app's AppConfig.ready() for its importers (kind = ImportJob.Kind value)."""
    IMPORTERS[importer.kind] = importer
    return importer


def importer_for(kind: str) -> type[BaseImporter]:
    return IMPORTERS[kind]


def import_table(table: Table, *, kind: str, write: bool, skip_invalid: bool = False,
                 staff_user: AbstractBaseUser | None = None, label: str = "", options: dict | None = None,
                 progress: Progress | None = None, problems: ProblemLog | None = None) -> Report:
    """Dry run (write=False) or import (write=True, in the caller's transaction) of one table;
    every problem also goes to `problems` (the downloadable list)."""
    importer = importer_for(kind)(write=write, skip_invalid=skip_invalid, staff_user=staff_user, label=label,
                                  options=options, progress=progress)
    importer.report.problems = problems
    return importer.run(table)
