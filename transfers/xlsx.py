"""Reading the first sheet of an XLSX file within bounded memory and time, whatever the file says.

Why not openpyxl's reader (it still writes the exports): with `read_only=True` it streams rows, but
a file decides how much it costs. It pads every row to the declared dimension (a 5 KB file saying
A1:XFD1048576 asks for a million rows of 16,384 cells: `reset_dimensions()` fixes that one), it
loads the whole shared-string table into a list (one 400 MB string took 1.9 GB), and its
`iterparse` keeps in the tree every element it does not clear: cleared rows stay children of
sheetData, unknown elements stay whole, the cells of a row wait for its end tag (5 million `<c/>`,
20 KB zipped, took 1.6 GB) and the text of a cell is gathered whole before anyone can look at its
length. Capping the inflated sizes of the parts (ZipInfo, below) bounds each of these, but only
at a cap that would refuse ordinary 50,000-row files. So the parts are read here with expat and
handlers that keep only what the import needs:

- The archive: at most MAX_ZIP_MEMBERS parts and a small central directory (checked from the end
  record before zipfile reads it), and every part read has a declared inflated size under its
  cap. The declared size is a real bound: zipfile stops inflating there (and fails the CRC).
- XML: no DTD (so no entity expansion: Excel never writes one), no token longer than
  MAX_TOKEN_BYTES (expat buffers a tag or comment whole), no cell text longer than 32,767
  characters (Excel's own limit), rows and cells in ascending order, row numbers within Excel's
  1,048,576 and at most `max_columns` columns.
- Shared strings are kept as UTF-8 in one bytearray with an offset array (a few bytes per string
  instead of a Python object each), decoded when a cell refers to one.
- Values come out as openpyxl's `data_only` reading gives them (numbers, dates by the cell's
  number format, booleans, text), so an import reads the same as before.
"""

from __future__ import annotations

import contextlib
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from posixpath import dirname, join, normpath
from typing import IO, Any
from xml.parsers import expat

from django.utils.translation import gettext as _

MiB = 1024 * 1024
MAX_ZIP_MEMBERS = 1_000
MAX_CENTRAL_DIRECTORY = 4 * MiB
MAX_PART_BYTES = 16 * MiB  # workbook, relationships, styles (inflated)
MAX_SHARED_STRINGS_BYTES = 512 * MiB  # the string table's XML, inflated (its text kept: below)
MAX_SHARED_STRINGS_TEXT = 128 * MiB  # UTF-8 bytes of shared text kept in memory
MAX_SHARED_STRINGS = 4_000_000
MAX_SHEET_BYTES = 2048 * MiB  # the sheet's XML, inflated: streamed, so this bounds time only
# Beyond this inflated size a part must not be more than MAX_RATIO times its zipped size:
# spreadsheet XML compresses 5-30 times, a zip bomb about 1,000 times.
RATIO_CHECKED_FROM = 32 * MiB
MAX_RATIO = 200
MAX_TOKEN_BYTES = 1 * MiB
MAX_CELL_CHARS = 32_767  # Excel's limit for the text of one cell
MAX_ROW_NUMBER = 1_048_576  # Excel's last row
MAX_ROW_WEIGHT = 4 * MiB  # characters of one row, plus 8 per cell
READ_BYTES = 64 * 1024


class XlsxRefused(Exception):
    """The file is not a readable, sane workbook; `detail` says why (translated)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _attr(attrs: dict, local_name: str) -> str | None:
    """An attribute by local name, whatever its prefix (`r:id`)."""
    for key, value in attrs.items():
        if key == local_name or key.endswith(":" + local_name):
            return value
    return None


def _forbid_dtd(*args: Any) -> None:
    raise XlsxRefused(_("the Excel file contains a DTD (entity definitions), which Excel never writes"))


def _parser(*, buffer_text: bool = True) -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_dtd
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = buffer_text
    parser.buffer_size = READ_BYTES
    return parser


def _feed(parser: expat.XMLParserType, data: bytes, fed: int, final: bool = False) -> int:
    """Parse one piece; refuse a token that expat has been buffering for too long."""
    try:
        parser.Parse(data, final)
    except expat.ExpatError as error:
        raise XlsxRefused(_("the Excel file is damaged (%(error)s)") % {"error": str(error)[:200]}) from None
    fed += len(data)
    if fed - max(parser.CurrentByteIndex, 0) > MAX_TOKEN_BYTES:
        raise XlsxRefused(_("the Excel file contains a tag, comment or cell longer than %(count)s MB")
                          % {"count": MAX_TOKEN_BYTES // MiB})
    return fed


class _Archive:
    def __init__(self, binary: IO[bytes]):
        _check_central_directory(binary)
        try:
            self.zip = zipfile.ZipFile(binary)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
            raise XlsxRefused(_("the Excel file cannot be opened")) from None
        infos = self.zip.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise XlsxRefused(_("the Excel file has %(count)s parts (at most %(limit)s)")
                              % {"count": len(infos), "limit": MAX_ZIP_MEMBERS})
        self.infos = {info.filename: info for info in infos}

    def info(self, name: str, limit: int) -> zipfile.ZipInfo:
        info = self.infos.get(name)
        if info is None:
            raise XlsxRefused(_("the Excel file cannot be opened (%(part)s is missing)") % {"part": name})
        too_big = info.file_size > limit
        bomb = info.file_size > RATIO_CHECKED_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1)
        if too_big or bomb:
            raise XlsxRefused(_("the Excel file is too large once unpacked (%(part)s: %(size)s MB, at most "
                                "%(limit)s MB, %(ratio)s times its packed size)")
                              % {"part": name, "size": info.file_size // MiB, "limit": limit // MiB,
                                 "ratio": info.file_size // max(info.compress_size, 1)})
        return info

    def open(self, name: str, limit: int) -> IO[bytes]:
        try:
            return self.zip.open(self.info(name, limit))
        except XlsxRefused:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError):
            raise XlsxRefused(_("the Excel file cannot be opened")) from None

    def parse(self, name: str, limit: int, parser: expat.XMLParserType) -> None:
        with self.open(name, limit) as part:
            fed = 0
            while data := _read(part):
                fed = _feed(parser, data, fed)
            _feed(parser, b"", fed, final=True)

    def close(self) -> None:
        self.zip.close()


def _read(part: IO[bytes]) -> bytes:
    try:
        return part.read(READ_BYTES)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):  # bad CRC, truncated data
        raise XlsxRefused(_("the Excel file is damaged")) from None


def _check_central_directory(binary: IO[bytes]) -> None:
    """zipfile reads the whole central directory into objects of ~500 bytes per entry: a 100 MB
    directory of empty entries would be gigabytes. Its size is in the end record."""
    try:
        binary.seek(0)
        end = zipfile._EndRecData(binary)  # the stdlib's own reader of the end record (zip64 too)
    except (OSError, ValueError, EOFError):
        end = None
    binary.seek(0)
    if not end:
        raise XlsxRefused(_("the Excel file cannot be opened"))
    if end[zipfile._ECD_SIZE] > MAX_CENTRAL_DIRECTORY or end[zipfile._ECD_ENTRIES_TOTAL] > MAX_ZIP_MEMBERS:
        raise XlsxRefused(_("the Excel file has %(count)s parts (at most %(limit)s)")
                          % {"count": end[zipfile._ECD_ENTRIES_TOTAL], "limit": MAX_ZIP_MEMBERS})


def _relationships(archive: _Archive, owner: str) -> dict[str, tuple[str, str]]:
    """Id -> (type, part name) of `owner`'s relationships."""
    folder = dirname(owner)
    rels_name = join(folder, "_rels", owner.rpartition("/")[2] + ".rels") if owner else "_rels/.rels"
    found: dict[str, tuple[str, str]] = {}
    if rels_name not in archive.infos:
        return found

    def start(name: str, attrs: dict) -> None:
        if _local(name) == "Relationship" and attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            part = normpath(target.lstrip("/") if target.startswith("/") else join(folder, target))
            found[attrs.get("Id", "")] = (attrs.get("Type", ""), part)

    parser = _parser()
    parser.StartElementHandler = start
    archive.parse(rels_name, MAX_PART_BYTES, parser)
    return found


@dataclass
class _Workbook:
    sheet: str
    shared_strings: str | None
    styles: str | None
    date1904: bool


def _workbook(archive: _Archive) -> _Workbook:
    workbook = next((part for kind, part in _relationships(archive, "").values()
                     if kind.endswith("/officeDocument")), "xl/workbook.xml")
    relations = _relationships(archive, workbook)
    sheet_ids: list[str] = []
    flags = {"date1904": False}

    def start(name: str, attrs: dict) -> None:
        tag = _local(name)
        if tag == "sheet":
            sheet_ids.append(_attr(attrs, "id") or "")
        elif tag == "workbookPr":
            flags["date1904"] = attrs.get("date1904", "").lower() in ("1", "true")

    parser = _parser()
    parser.StartElementHandler = start
    archive.parse(workbook, MAX_PART_BYTES, parser)
    sheets = [relations[rid][1] for rid in sheet_ids if rid in relations and relations[rid][0].endswith("/worksheet")]
    if not sheets:
        raise XlsxRefused(_("the Excel file has no worksheet"))

    def part(kind: str) -> str | None:
        return next((name for rel_kind, name in relations.values() if rel_kind.endswith(kind)), None)

    return _Workbook(sheet=sheets[0], shared_strings=part("/sharedStrings"), styles=part("/styles"),
                     date1904=flags["date1904"])


def _date_styles(archive: _Archive, styles: str | None) -> tuple[frozenset[int], frozenset[int]]:
    """Indexes of the cell formats (`s` of a cell) that show dates, and those that show durations."""
    from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format

    if styles is None or styles not in archive.infos:
        return frozenset(), frozenset()
    custom: dict[int, str] = {}
    cell_formats: list[int] = []
    where = {"cellXfs": False}

    def start(name: str, attrs: dict) -> None:
        tag = _local(name)
        if tag == "numFmt":
            with contextlib.suppress(ValueError):
                custom[int(attrs.get("numFmtId", ""))] = attrs.get("formatCode", "")[:1000]
        elif tag == "cellXfs":
            where["cellXfs"] = True
        elif tag == "xf" and where["cellXfs"]:
            try:
                cell_formats.append(int(attrs.get("numFmtId", 0)))
            except ValueError:
                cell_formats.append(0)

    def end(name: str) -> None:
        if _local(name) == "cellXfs":
            where["cellXfs"] = False

    parser = _parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    archive.parse(styles, MAX_PART_BYTES, parser)
    dates, durations = set(), set()
    verdicts: dict[int, tuple[bool, bool]] = {}
    for index, number_format in enumerate(cell_formats):
        if number_format not in verdicts:
            code = custom.get(number_format) or builtin_format_code(number_format)
            verdicts[number_format] = (bool(code) and is_date_format(code), bool(code) and is_timedelta_format(code))
        is_date, is_duration = verdicts[number_format]
        if is_date:
            dates.add(index)
        if is_duration:
            durations.add(index)
    return frozenset(dates), frozenset(durations)


class SharedStrings:
    """The workbook's string table, compact: UTF-8 text in one buffer, an offset per string."""

    def __init__(self) -> None:
        self.text = bytearray()
        self.ends = array("Q")

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, index: int) -> str:
        start = self.ends[index - 1] if index > 0 else 0
        return self.text[start:self.ends[index]].decode("utf-8", "surrogatepass")


def _shared_strings(archive: _Archive, name: str | None) -> SharedStrings:
    """Like openpyxl's `read_string_table`: each `si`'s text runs (`t`, and `r/t`), without the
    phonetic hints (`rPh`), and `x005F_` removed."""
    table = SharedStrings()
    if name is None or name not in archive.infos:
        return table
    state = {"si": False, "t": False, "rPh": 0}
    pieces: list[str] = []
    length = [0]

    def start(tag: str, attrs: dict) -> None:
        tag = _local(tag)
        if tag == "t":
            state["t"] = state["si"] and not state["rPh"]
        elif tag == "si":
            state["si"] = True
            pieces.clear()
            length[0] = 0
        elif tag == "rPh":
            state["rPh"] += 1

    def end(tag: str) -> None:
        tag = _local(tag)
        if tag == "t":
            state["t"] = False
        elif tag == "rPh":
            state["rPh"] -= 1
        elif tag == "si":
            state["si"] = False
            table.text += "".join(pieces).replace("x005F_", "").encode("utf-8", "surrogatepass")
            table.ends.append(len(table.text))
            if len(table.ends) > MAX_SHARED_STRINGS or len(table.text) > MAX_SHARED_STRINGS_TEXT:
                raise XlsxRefused(_("the Excel file has more shared text than an import can hold (%(count)s "
                                    "strings, %(size)s MB)") % {"count": len(table.ends),
                                                                "size": len(table.text) // MiB})

    def text(data: str) -> None:
        if state["t"]:
            length[0] += len(data)
            if length[0] > MAX_CELL_CHARS:
                raise XlsxRefused(_("a cell holds more than %(count)s characters (Excel's limit)")
                                  % {"count": f"{MAX_CELL_CHARS:,}"})
            pieces.append(data)

    parser = _parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    archive.parse(name, MAX_SHARED_STRINGS_BYTES, parser)
    return table


def _column_number(reference: str) -> int:
    """"A1" -> 1, "AB12" -> 28; 0 for a reference without letters."""
    number = 0
    for char in reference:
        if "A" <= char <= "Z":
            number = number * 26 + ord(char) - 64
        elif "a" <= char <= "z":
            number = number * 26 + ord(char) - 96
        else:
            break
        if number > 16_384:
            return number
    return number


def _number(text: str) -> int | float:
    if "." in text or "E" in text or "e" in text:
        return float(text)
    return int(text)


class Sheet:
    """The rows of the first worksheet as (row number, values); values[i] is column i + 1 and
    empty cells are ""; rows without cells are left out (their numbers are skipped)."""

    def __init__(self, binary: IO[bytes], *, max_columns: int):
        self.max_columns = max_columns
        self.archive = _Archive(binary)
        try:
            book = _workbook(self.archive)
            self.sheet_info = self.archive.info(book.sheet, MAX_SHEET_BYTES)
            self.date_styles, self.duration_styles = _date_styles(self.archive, book.styles)
            self.strings = _shared_strings(self.archive, book.shared_strings)
        except BaseException:
            self.archive.close()
            raise
        from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900

        self.epoch = CALENDAR_MAC_1904 if book.date1904 else CALENDAR_WINDOWS_1900
        self.sheet = book.sheet
        self.packed_read = 0
        self.weight = 0  # characters and cells read so far: what the rows in memory cost

    def fraction(self) -> float:
        packed = self.sheet_info.compress_size
        return min(1.0, self.packed_read / packed) if packed else 0.0

    def rows(self) -> Iterator[tuple[int, list]]:
        try:
            yield from self._rows()
        finally:
            self.archive.close()

    def _rows(self) -> Iterator[tuple[int, list]]:
        from openpyxl.utils.datetime import from_excel, from_ISO8601

        done: list[tuple[int, list]] = []
        max_columns = self.max_columns
        strings, dates, durations, epoch = self.strings, self.date_styles, self.duration_styles, self.epoch
        row_state: dict[str, Any] = {"number": 0, "cells": None, "weight": 0}
        cell = {"column": 0, "type": "n", "style": 0, "capture": False, "inline": False, "rph": 0, "chars": 0}
        pieces: list[str] = []

        def refuse_order(what: str) -> None:
            raise XlsxRefused(_("the Excel file is damaged (%(what)s out of order in row %(row)s)")
                              % {"what": what, "row": row_state["number"]})

        def start(name: str, attrs: dict) -> None:
            tag = name.rpartition(":")[2]
            if tag == "c":
                cells = row_state["cells"]
                if cells is None:
                    return
                reference = attrs.get("r")
                column = _column_number(reference) if reference else cell["column"] + 1
                if column <= cell["column"]:
                    refuse_order(_("cells"))
                if column > max_columns:
                    raise XlsxRefused(_("row %(row)s has more than %(count)s columns")
                                      % {"row": row_state["number"], "count": max_columns})
                cell["column"] = column
                cell["type"] = attrs.get("t", "n")
                style = attrs.get("s")
                cell["style"] = int(style) if style and style.isdigit() else 0
                cell["inline"] = False
                cell["capture"] = False
                cell["chars"] = 0
                pieces.clear()
            elif tag == "v":
                cell["capture"] = cell["type"] != "inlineStr"
            elif tag == "t":
                cell["capture"] = cell["inline"] and not cell["rph"]
            elif tag == "is":
                cell["inline"] = True
            elif tag == "rPh":
                cell["rph"] += 1
            elif tag == "row":
                number = attrs.get("r")
                if number is None:
                    number = row_state["number"] + 1
                else:
                    try:
                        number = int(float(number)) if not number.isdigit() else int(number)
                    except ValueError:
                        raise XlsxRefused(_("the Excel file is damaged (row number “%(value)s”)")
                                          % {"value": number[:20]}) from None
                if number <= row_state["number"]:
                    refuse_order(_("rows"))
                if number > MAX_ROW_NUMBER:
                    raise XlsxRefused(_("the sheet has a row numbered %(row)s, beyond Excel's last row "
                                        "(%(last)s)") % {"row": number, "last": f"{MAX_ROW_NUMBER:,}"})
                row_state["number"] = number
                row_state["cells"] = []
                row_state["weight"] = 0
                cell["column"] = 0

        def end(name: str) -> None:
            tag = name.rpartition(":")[2]
            if tag == "c":
                cells = row_state["cells"]
                if cells is None:
                    return
                value = _value()
                column = cell["column"]
                if len(cells) < column - 1:
                    cells.extend([""] * (column - 1 - len(cells)))
                cells.append("" if value is None else value)
                weight = 8 + len(value) if type(value) is str else 8
                row_state["weight"] += weight
                if row_state["weight"] > MAX_ROW_WEIGHT:
                    raise XlsxRefused(_("row %(row)s holds more than %(count)s MB of text")
                                      % {"row": row_state["number"], "count": MAX_ROW_WEIGHT // MiB})
                self.weight += weight
            elif tag in ("v", "t"):
                cell["capture"] = False
            elif tag == "rPh":
                cell["rph"] -= 1
            elif tag == "row":
                if row_state["cells"]:
                    done.append((row_state["number"], row_state["cells"]))
                row_state["cells"] = None

        def text(data: str) -> None:
            if cell["capture"]:
                cell["chars"] += len(data)
                if cell["chars"] > MAX_CELL_CHARS:
                    raise XlsxRefused(_("a cell holds more than %(count)s characters (Excel's limit)")
                                      % {"count": f"{MAX_CELL_CHARS:,}"})
                pieces.append(data)

        def _value() -> Any:
            """What openpyxl's reader (data_only) makes of the cell."""
            kind = cell["type"]
            if kind == "inlineStr":
                return "".join(pieces) if cell["inline"] else None
            raw = "".join(pieces) if pieces else None
            if not raw:
                return None
            if kind == "n":
                try:
                    value = _number(raw)
                except ValueError:
                    raise XlsxRefused(_("the Excel file is damaged (“%(value)s” in row %(row)s is not a number)")
                                      % {"value": raw[:50], "row": row_state["number"]}) from None
                style = cell["style"]
                if style in dates:
                    try:
                        return from_excel(value, epoch, timedelta=style in durations)
                    except (OverflowError, ValueError):
                        return "#VALUE!"
                return value
            if kind == "s":
                try:
                    return strings[int(raw)]
                except (ValueError, IndexError):
                    raise XlsxRefused(_("the Excel file is damaged (a cell in row %(row)s refers to a missing "
                                        "text)") % {"row": row_state["number"]}) from None
            if kind == "b":
                try:
                    return bool(int(raw))
                except ValueError:
                    return raw
            if kind == "d":
                try:
                    parsed: datetime | None = from_ISO8601(raw)
                except (ValueError, TypeError):
                    return raw
                return parsed
            return raw  # "str" (a formula's text) and "e" (#N/A and the like)

        parser = _parser()
        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text
        with self.archive.open(self.sheet, MAX_SHEET_BYTES) as part:
            fed = 0
            while data := _read(part):
                fed = _feed(parser, data, fed)
                self.packed_read = getattr(part, "_compress_size", 0) - getattr(part, "_compress_left", 0)
                if done:
                    yield from done
                    done.clear()
            _feed(parser, b"", fed, final=True)
            yield from done


def inflated_size(binary: IO[bytes]) -> int:
    """The declared unpacked size of all parts (0 if the file is not a sane archive: reading it
    will say why). Decides whether a file is small enough to be read in a web request."""
    try:
        archive = _Archive(binary)
    except XlsxRefused:
        return 0
    try:
        return sum(info.file_size for info in archive.infos.values())
    finally:
        archive.close()
        binary.seek(0)
