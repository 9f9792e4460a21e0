"""The column-mapping step: which field each heading of an uploaded file fills.

The importers know German and English headings by name (`BaseImporter.aliases`); a file with
headings they don't know ("Kunde seit" in an old export, "Umsatz 12 Monate") gets a mapping
step in the console: each heading -> a field or "ignore", the known ones pre-mapped. The
mapping is saved in the job's options (`"mapping"`: one field or "" per heading, in the order of
the file's columns) and read by the dry run and the import alike (`BaseImporter.map_headings`).

Bounded: the step handles files of up to MAX_MAPPED_COLUMNS columns, and the page shows a
heading's first HEADING_CHARS characters (the mapping is by position, not by the text)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from .importers import BaseImporter

MAX_MAPPED_COLUMNS = 200
HEADING_CHARS = 120


def shown_heading(heading: str) -> str:
    return heading if len(heading) <= HEADING_CHARS else heading[: HEADING_CHARS - 1] + "…"


def mapping_problems(importer: type[BaseImporter], headings: list[str], fields: list[str]) -> list[str]:
    """What is wrong with `fields` (one per heading, "" = ignore) for this file; empty if nothing."""
    if len(headings) > MAX_MAPPED_COLUMNS:
        return [_("the file has %(count)s columns; columns can be mapped in files of up to %(max)s columns")
                % {"count": len(headings), "max": MAX_MAPPED_COLUMNS}]
    if not isinstance(fields, list) or len(fields) != len(headings):
        return [_("the mapping does not fit the columns of the file; map the columns again")]
    known = {column.field for column in importer.columns}
    problems: list[str] = []
    first_heading: dict[str, str] = {}
    for heading, target in zip(headings, fields, strict=True):
        if not target:
            continue
        if not isinstance(target, str) or target not in known:
            problems.append(_("“%(field)s” is not a field of this import") % {"field": str(target)[:50]})
            continue
        if not heading:
            problems.append(_("a column without a heading cannot be imported"))
            continue
        if target in first_heading:
            problems.append(_("“%(first)s” and “%(second)s” are both mapped to “%(field)s”; map one of them to "
                              "another field or ignore it")
                            % {"first": shown_heading(first_heading[target]), "second": shown_heading(heading),
                               "field": importer.label_of(target)})
            continue
        first_heading[target] = heading
    for alternatives in importer.required:
        if not first_heading.keys() & set(alternatives):
            names = " / ".join(str(importer.label_of(name)) for name in alternatives)
            problems.append(_("a column %(names)s is needed: map one of the headings to it") % {"names": names})
    return problems


def mapping_rows(importer: type[BaseImporter], headings: list[str], fields: list[str] | None) -> list[dict]:
    """What the mapping form shows: each heading with its field (the saved one, else the one its
    name suggests) and whether the importer knows the heading by its name."""
    suggested = importer.suggested_mapping(headings)
    chosen = fields if isinstance(fields, list) and len(fields) == len(headings) else suggested
    return [{"index": index, "heading": shown_heading(heading), "field": chosen[index] or "",
             "known": bool(suggested[index])}
            for index, heading in enumerate(headings) if heading]


def field_choices(importer: type[BaseImporter]) -> list[tuple[str, str]]:
    return [("", _("ignore this column"))] + [(column.field, str(column.label)) for column in importer.columns]
