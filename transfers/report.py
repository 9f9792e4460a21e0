"""The report of a dry run or an import: counts, and the rows in error with line and column."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ERRORS_KEPT = 1000
WARNINGS_KEPT = 200
REPORT_TEXT_CHARS = 300  # of one message or column name in a report


COUNT_KEYS = ("new", "updated", "unchanged", "skipped", "invalid")


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    errors: list[dict] = field(default_factory=list)
    errors_total: int = 0
    warnings: list[dict] = field(default_factory=list)
    warnings_total: int = 0
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # heading in the file -> field
    ignored_columns: list[str] = field(default_factory=list)

    # A message quotes the cell, and a cell may be 100,000 characters: the report keeps a part.
    def error(self, line: int, column: str, message: str) -> None:
        self.errors_total += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append({"line": line, "column": _shortened(column), "message": _shortened(str(message))})

    def warning(self, line: int | None, column: str, message: str) -> None:
        self.warnings_total += 1
        if len(self.warnings) < WARNINGS_KEPT:
            self.warnings.append({"line": line, "column": _shortened(column, 1000),
                                  "message": _shortened(str(message))})


def _shortened(text: str, limit: int = REPORT_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


Progress = Callable[[int, float], None]
