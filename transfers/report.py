"""The report of a dry run or an import: counts, and the rows in error with line and column.

Three kinds of problem, kept apart because they mean different things to staff:

- errors: invalid rows (not imported; the import refuses them unless staff skip them),
- skipped rows: valid but left out on purpose (a member repeated in the file, an erased one),
- warnings: imported, but worth a look (a postal code that doesn't fit the country, columns
  that are not imported, consent without proof).

The report keeps the first ERRORS_KEPT errors and NOTES_KEPT skipped rows and warnings for the
page and counts them all. Every problem also goes, one CSV line each, into a `ProblemLog`
(a temporary file: memory for the first MB, then disk) that the services store next to the
job, so a file with a hundred thousand skipped rows lists every one of them in the download
while the job row and the page stay small."""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from .resources import escape_cell

ERRORS_KEPT = 1000
NOTES_KEPT = 1000  # skipped rows and warnings, together
REPORT_TEXT_CHARS = 300  # of one message or column name in a report


COUNT_KEYS = ("new", "updated", "unchanged", "skipped", "invalid")
ERROR, SKIPPED, WARNING = "error", "skipped", "warning"


class ProblemLog:
    """Every problem of one run as a CSV (semicolons, UTF-8 with BOM: what Excel opens),
    written to a spooled temporary file and compressed when stored."""

    SPOOL_BYTES = 1024 * 1024

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=self.SPOOL_BYTES, mode="w+b")  # noqa: SIM115
        self.text = io.TextIOWrapper(self.file, encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.text, delimiter=";")
        self.kinds = {ERROR: _("invalid"), SKIPPED: _("skipped"), WARNING: _("warning")}
        self.writer.writerow([_("Line"), _("Kind"), _("Column"), _("Problem")])
        self.count = 0

    def add(self, kind: str, line: int | None, column: str, message: str) -> None:
        self.count += 1
        self.writer.writerow(["" if line is None else line, self.kinds[kind], escape_cell(column),
                              escape_cell(message)])

    def compressed(self) -> bytes:
        """The whole CSV, gzip-compressed (a list of a million skipped rows repeats itself)."""
        self.text.flush()
        self.file.seek(0)
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb") as packed:
            while block := self.file.read(64 * 1024):
                packed.write(block)
        return buffer.getvalue()

    def close(self) -> None:
        self.text.close()


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    errors: list[dict] = field(default_factory=list)
    errors_total: int = 0
    warnings: list[dict] = field(default_factory=list)  # skipped rows and warnings, each with its "kind"
    warnings_total: int = 0
    skipped_total: int = 0
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # heading in the file -> field
    ignored_columns: list[str] = field(default_factory=list)
    problems: ProblemLog | None = None

    # A message quotes the cell, and a cell may be 100,000 characters: the report keeps a part.
    def error(self, line: int, column: str, message: str) -> None:
        self.errors_total += 1
        column, message = _shortened(column), _shortened(str(message))
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append({"line": line, "column": column, "message": message})
        if self.problems is not None:
            self.problems.add(ERROR, line, column, message)

    def warning(self, line: int | None, column: str, message: str) -> None:
        """An imported row (or the file) with something staff should look at."""
        self.warnings_total += 1
        self._note(WARNING, line, column, message)

    def skip(self, line: int, column: str, message: str) -> None:
        """A row left out on purpose, with the reason."""
        self.skipped_total += 1
        self._note(SKIPPED, line, column, message)

    def _note(self, kind: str, line: int | None, column: str, message: str) -> None:
        column, message = _shortened(column, 1000), _shortened(str(message))
        if len(self.warnings) < NOTES_KEPT:
            self.warnings.append({"line": line, "kind": kind, "column": column, "message": message})
        if self.problems is not None:
            self.problems.add(kind, line, column, message)

    def totals(self) -> dict[str, int]:
        return {"errors_total": self.errors_total, "skipped_total": self.skipped_total,
                "warnings_total": self.warnings_total}


def _shortened(text: str, limit: int = REPORT_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


Progress = Callable[[int, float], None]
