"""Reading files: CSV (encoding and delimiter detected or chosen) and XLSX (transfers.xlsx),
both streamed as a `Table` of (line number, cells) within bounded memory and time."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.utils.translation import gettext as _

from .errors import ImportFileError

SAMPLE_BYTES = 64 * 1024


class _EncodingFailed(Exception):
    def __init__(self, encoding: str, line: int):
        super().__init__(encoding, line)
        self.encoding = encoding
        self.line = line


FORMATS = ("auto", "csv", "xlsx")
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "cp1252", "utf-16")
DELIMITERS = ("auto", ";", ",", "\t", "|")


def detect_encoding(sample: bytes) -> str:
    """A byte-order mark decides; else UTF-8 if the sample decodes as UTF-8, else Windows-1252
    (what Excel on a German Windows writes for "CSV (Trennzeichen-getrennt)")."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # final=False: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def sniff_delimiter(sample: str) -> str:
    """The candidate that splits the first lines into the most columns, the same number on
    every line (quotes respected, so "Müller; Sohn" inside quotes does not count)."""
    lines = sample.splitlines()[:50]
    if len(lines) > 1:
        lines = lines[:-1]  # the sample's last line may be cut off
    best, best_score = ",", (0.0, 1)
    for candidate in (";", ",", "\t", "|"):
        rows = [row for row in csv.reader(lines, delimiter=candidate) if any(cell.strip() for cell in row)]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(1 for row in rows if len(row) == width) / len(rows), width)
        if score > best_score:
            best, best_score = candidate, score
    return best


# Limits that keep reading any file within bounded memory and time (transfers/xlsx.py has the
# Excel-only ones). A customer list has a few dozen columns and lines of a few hundred characters.
MAX_COLUMNS = 1_000
MAX_RECORD_CHARS = 1024 * 1024  # one CSV record (a quoted cell may span lines)


def max_rows() -> int:
    """Rows a file may have (blank lines included): beyond it the file is refused."""
    return getattr(settings, "LOYALTY_IMPORT_MAX_ROWS", 2_000_000)


def max_upload_bytes() -> int:
    return getattr(settings, "LOYALTY_IMPORT_MAX_BYTES", 256 * 1024 * 1024)


@dataclass
class Table:
    """Rows of a file as (line number, cells); `fraction()` says how far reading has got and
    `weight()` how much has been read (characters and cells), to bound what a chunk holds."""

    headers: list[str]
    rows: Iterator[tuple[int, list]]
    file_format: str
    encoding: str = ""
    delimiter: str = ""
    fraction: Callable[[], float] = lambda: 0.0
    weight: Callable[[], int] = lambda: 0


class _BinaryAdapter(io.RawIOBase):
    """Lets io.TextIOWrapper read any object with .read() (storage files are not always IOBase)."""

    def __init__(self, source):
        self.source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_table(binary: IO[bytes], *, name: str, size: int, file_format: str = "auto", encoding: str = "auto",
               delimiter: str = "auto") -> Table:
    binary.seek(0)
    head = binary.read(SAMPLE_BYTES)
    binary.seek(0)
    lowered = name.lower()
    if head.startswith(b"\xd0\xcf\x11\xe0") or lowered.endswith(".xls"):
        raise ImportFileError(detail=_("old Excel files (.xls) cannot be read; save it as .xlsx or CSV"))
    if file_format == "auto":
        file_format = "xlsx" if head.startswith(b"PK\x03\x04") or lowered.endswith(".xlsx") else "csv"
    if file_format == "xlsx":
        return _xlsx_table(binary)
    if not head.strip():
        raise ImportFileError(detail=_("the file is empty"))
    return _csv_table(binary, head=head, size=size, encoding=encoding, delimiter=delimiter)


_UNDECODABLE = re.compile("[\udc80-\udcff\x00]")


def _too_many_rows() -> ImportFileError:
    return ImportFileError(detail=_("the file has more than %(count)s rows; split it into smaller files")
                           % {"count": f"{max_rows():,}"})


def _too_many_columns(line: int) -> ImportFileError:
    return ImportFileError(detail=_("line %(line)s has more than %(count)s columns") % {"line": line,
                                                                                       "count": MAX_COLUMNS})


def _csv_table(binary: IO[bytes], *, head: bytes, size: int, encoding: str, delimiter: str) -> Table:
    if encoding == "auto":
        encoding = detect_encoding(head)
    elif encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"  # the BOM is not part of the first heading
    sample = head.decode(encoding, errors="replace").lstrip("\ufeff")
    skip_first = False
    if match := re.match(r"sep=(.)\s*(\r?\n|$)", sample):  # Excel's "sep=;" hint line
        delimiter, skip_first = match.group(1), True
        sample = sample[match.end():]
    if delimiter == "auto":
        delimiter = sniff_delimiter(sample)

    # Through an adapter: closing the text wrapper must not close the caller's file.
    # Undecodable bytes become lone surrogates instead of an error somewhere in an 8 KB block:
    # the record that holds one names the line.
    text = io.TextIOWrapper(io.BufferedReader(_BinaryAdapter(binary), buffer_size=SAMPLE_BYTES),
                            encoding=encoding, errors="surrogateescape", newline="")
    # Lines are read with a length limit, so a file without line breaks is not read into one
    # string; `read` counts the characters of the record being read and of the whole file.
    read = {"record": 0, "total": 0, "cells": 0}

    def lines() -> Iterator[str]:
        readline = text.readline
        while line := readline(MAX_RECORD_CHARS + 1):
            read["record"] += len(line)
            if read["record"] > MAX_RECORD_CHARS:
                raise ImportFileError(detail=_("line %(line)s is longer than %(count)s characters")
                                      % {"line": reader.line_num + 1, "count": f"{MAX_RECORD_CHARS:,}"})
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    limit = max_rows()

    def records() -> Iterator[tuple[int, list]]:
        previous = 0
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # a cell longer than csv.field_size_limit(), a NUL byte
                raise ImportFileError(detail=_("line %(line)s cannot be read (%(error)s)")
                                      % {"line": previous + 1, "error": str(error)[:200]}) from None
            start = previous + 1
            previous = reader.line_num
            read["total"] += read["record"]
            read["record"] = 0
            read["cells"] += len(record)
            if len(record) > MAX_COLUMNS:
                raise _too_many_columns(start)
            if previous > limit:
                raise _too_many_rows()
            if found := _UNDECODABLE.search("\n".join(record)):
                if found.group() == "\x00":  # PostgreSQL stores no NUL characters, not even in a report
                    raise ImportFileError(detail=_("line %(line)s contains a zero byte (is the file UTF-16? Choose "
                                                   "the encoding)") % {"line": start})
                raise _EncodingFailed(encoding, start)
            yield start, record

    rows = records()
    headers: list[str] | None = None
    for _line, record in rows:
        if skip_first:
            skip_first = False
            continue
        if any(cell.strip() for cell in record):
            headers = [cell.strip().lstrip("\ufeff") for cell in record]
            break
    if headers is None:
        raise ImportFileError(detail=_("the file has no heading row"))

    def fraction() -> float:
        try:
            return min(1.0, binary.tell() / size) if size else 0.0
        except (OSError, ValueError):
            return 0.0

    return Table(headers=headers, rows=rows, file_format="csv", encoding=encoding, delimiter=delimiter,
                 fraction=fraction, weight=lambda: read["total"] + 8 * read["cells"])


def _xlsx_table(binary: IO[bytes]) -> Table:
    from .xlsx import Sheet, XlsxRefused

    try:
        sheet = Sheet(binary, max_columns=MAX_COLUMNS)
    except XlsxRefused as refused:
        raise ImportFileError(detail=refused.detail) from None
    limit = max_rows()

    def records() -> Iterator[tuple[int, list]]:
        try:
            for line, values in sheet.rows():
                if line > limit:
                    raise _too_many_rows()
                yield line, values
        except XlsxRefused as refused:
            raise ImportFileError(detail=refused.detail) from None

    rows = records()
    headers = None
    for _line, record in rows:
        if any(str(cell).strip() for cell in record):
            headers = [str(cell).strip() for cell in record]
            break
    if headers is None:
        raise ImportFileError(detail=_("the first sheet is empty"))
    return Table(headers=headers, rows=rows, file_format="xlsx", fraction=sheet.fraction,
                 weight=lambda: sheet.weight)
