"""The spreadsheet-safe base of every export resource (django-import-export): cells that a
spreadsheet would run as formulas are escaped (CSV injection), dates are ISO."""

from __future__ import annotations

import re
from typing import Any

# A spreadsheet runs a cell as a formula when it starts with one of these (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+([.,]\d+)?")

ISO_DATE = "%Y-%m-%d"
ISO_DATETIME = "%Y-%m-%d %H:%M:%S"


def escape_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading single quote, which makes it
    plain text in Excel and LibreOffice. Numbers (also "-50" rendered for a CSV) stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeExportMixin:
    """Every exported cell goes through `escape_cell`, whatever the field or dehydrate method."""

    def export_field(self, field, instance, **kwargs):
        return escape_cell(super().export_field(field, instance, **kwargs))

    @classmethod
    def export_queryset(cls, queryset):
        """The queryset with the joins the columns need (no query per row)."""
        return queryset
