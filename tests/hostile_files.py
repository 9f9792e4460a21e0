"""Hostile import files, small on disk and huge once read: what tests/transfers/test_imports_hostile.py and
bench/hostile_import_bench.py feed the import. Each generator writes a file to `path` (streaming,
so making a 400 MB shared string costs no memory here) and returns the path.

The XLSX files are a normal workbook (written by openpyxl) with one part replaced, so everything
but the hostile part is what Excel-like writers produce."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
SHEET = "xl/worksheets/sheet1.xml"
SHARED_STRINGS = "xl/sharedStrings.xml"
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEADINGS = ["Kundennummer", "Vorname", "Nachname", "E-Mail"]


def _base_workbook() -> dict[str, bytes]:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADINGS)
    sheet.append(["K-1", "Erika", "Mustermann", "erika@example.org"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_xlsx(path: Path, replaced: dict[str, Callable[[], Iterable[bytes]]], extra_members: int = 0) -> Path:
    """The base workbook with some parts' bytes coming from generators (written in pieces)."""
    parts = _base_workbook()
    if SHARED_STRINGS in replaced:  # openpyxl wrote inline strings: announce a string table
        parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
            b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
        parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
            b"</Relationships>", b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            b'relationships/sharedStrings" Target="sharedStrings.xml" Id="rId9"/></Relationships>')
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in parts.items():
            if name in replaced:
                continue
            archive.writestr(name, content)
        for name, pieces in replaced.items():
            with archive.open(name, "w", force_zip64=True) as member:
                for piece in pieces():
                    member.write(piece)
        for number in range(extra_members):
            archive.writestr(f"customXml/item{number}.xml", b"")
    return path


def _sheet(rows_xml: Iterable[bytes], dimension: str | None = "A1:D2") -> Iterable[bytes]:
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    yield (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{MAIN_NS}">'
           f'{declared}<sheetData>').encode()
    yield from rows_xml
    yield b"</sheetData></worksheet>"


def _inline_row(number: int, values: list[str]) -> bytes:
    cells = "".join(f'<c t="inlineStr"><is><t>{value}</t></is></c>' for value in values)
    return f'<row r="{number}">{cells}</row>'.encode()


def dimension_bomb(path: Path) -> Path:
    """A few KB: three real rows (the last one numbered 1,048,576), and the sheet declares A1:XFD1048576,
    so a reader that trusts it makes a million rows of 16,384 cells."""
    rows = [_inline_row(1, HEADINGS), _inline_row(2, ["K-1", "Erika", "Mustermann", "erika@example.org"]),
            _inline_row(1_048_576, ["K-2"])]
    return _write_xlsx(path, {SHEET: lambda: _sheet(rows, dimension="A1:XFD1048576")})


def shared_string_bomb(path: Path, megabytes: int = 400) -> Path:
    """One shared string of `megabytes` MB (the file stays under 1 MB)."""
    def strings() -> Iterable[bytes]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}" count="5" uniqueCount="5">'.encode()
        for heading in HEADINGS:
            yield f"<si><t>{heading}</t></si>".encode()
        yield b"<si><t>"
        block = b"A" * MiB
        for _ in range(megabytes):
            yield block
        yield b"</t></si></sst>"

    def sheet() -> Iterable[bytes]:
        heading = "".join(f'<c t="s"><v>{index}</v></c>' for index in range(4))
        yield from _sheet([f'<row r="1">{heading}</row><row r="2"><c t="s"><v>4</v></c></row>'.encode()])

    return _write_xlsx(path, {SHARED_STRINGS: strings, SHEET: sheet})


def zip_bomb(path: Path, megabytes: int = 1024) -> Path:
    """A sheet that inflates to `megabytes` MB of whitespace between two rows."""
    def padding() -> Iterable[bytes]:
        block = b" " * MiB
        for _ in range(megabytes):
            yield block

    def sheet() -> Iterable[bytes]:
        yield from _sheet([_inline_row(1, HEADINGS), *padding(), _inline_row(2, ["K-1", "Erika", "M", "e@x.org"])])

    return _write_xlsx(path, {SHEET: sheet})


def many_zip_members(path: Path, members: int = 20_000) -> Path:
    return _write_xlsx(path, {}, extra_members=members)


def far_row(path: Path, row: int = 2_000_000_000) -> Path:
    """A row numbered two billion: readers that fill the gap with empty rows never finish."""
    rows = [_inline_row(1, HEADINGS), _inline_row(row, ["K-1", "Erika", "Mustermann", "erika@example.org"])]
    return _write_xlsx(path, {SHEET: lambda: _sheet(rows, dimension=None)})


def wide_xlsx_row(path: Path, cells: int = 5_000_000) -> Path:
    """A second row of five million empty cells (`<c/>`, no coordinates): 20 MB of XML, 20 KB zipped."""
    def rows() -> Iterable[bytes]:
        yield _inline_row(1, HEADINGS)
        yield b'<row r="2">'
        for _ in range(cells // 100_000):
            yield b"<c/>" * 100_000
        yield b"</row>"

    return _write_xlsx(path, {SHEET: lambda: _sheet(rows())})


def entity_expansion(path: Path) -> Path:
    """The "billion laughs": a DTD whose entities expand to gigabytes, used in a shared string."""
    def strings() -> Iterable[bytes]:
        entities = '<!ENTITY lol0 "lololololololololololololololololololololololololololololol">' + "".join(
            f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10))
        yield (f'<?xml version="1.0"?><!DOCTYPE sst [{entities}]><sst xmlns="{MAIN_NS}">'
               + "".join(f"<si><t>{heading}</t></si>" for heading in HEADINGS)
               + "<si><t>&lol9;</t></si></sst>").encode()

    def sheet() -> Iterable[bytes]:
        heading = "".join(f'<c t="s"><v>{index}</v></c>' for index in range(4))
        yield from _sheet([f'<row r="1">{heading}</row><row r="2"><c t="s"><v>4</v></c></row>'.encode()])

    return _write_xlsx(path, {SHARED_STRINGS: strings, SHEET: sheet})


def giant_comment(path: Path, megabytes: int = 20) -> Path:
    """A 20 MB comment in the sheet (under the zip-bomb ratio): XML parsers buffer a token whole."""
    def sheet() -> Iterable[bytes]:
        yield from _sheet([_inline_row(1, HEADINGS), b"<!--", b"x" * (megabytes * MiB), b"-->",
                           _inline_row(2, ["K-1", "Erika", "Mustermann", "erika@example.org"])], dimension=None)

    return _write_xlsx(path, {SHEET: sheet})


def huge_csv_line(path: Path, megabytes: int = 100) -> Path:
    """A heading, then one line of `megabytes` MB without a line break: cells "a;a;a;…"."""
    with path.open("wb") as file:
        file.write(b"Kundennummer;Vorname;Nachname;E-Mail\r\n")
        block = b"a;" * (MiB // 2)
        for _ in range(megabytes):
            file.write(block)
    return path


def huge_csv_cell(path: Path, megabytes: int = 100) -> Path:
    """One quoted cell of `megabytes` MB, line breaks inside the quotes."""
    with path.open("wb") as file:
        file.write(b'Kundennummer;Vorname;Nachname;E-Mail\r\nK-1;"')
        block = (b"x" * 1023 + b"\n") * 1024
        for _ in range(megabytes):
            file.write(block)
        file.write(b'";Mustermann;e@example.org\r\n')
    return path


def many_csv_columns(path: Path, columns: int = 50_000) -> Path:
    """A heading of 50,000 columns and a row to match (about 450 KB)."""
    with path.open("wb") as file:
        file.write(b"Kundennummer;Vorname;Nachname;E-Mail")
        file.write(b"".join(b";S%d" % n for n in range(columns)))
        file.write(b"\r\nK-1;Erika;Mustermann;e@example.org" + b";x" * columns + b"\r\n")
    return path


HOSTILE_FILES: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "dimension bomb (A1:XFD1048576)": ("dimension.xlsx", dimension_bomb),
    "shared-string bomb (one 400 MB string)": ("strings.xlsx", shared_string_bomb),
    "zip bomb (sheet inflates to 1 GB)": ("zipbomb.xlsx", zip_bomb),
    "20,000 zip members": ("members.xlsx", many_zip_members),
    "row number 2,000,000,000": ("farrow.xlsx", far_row),
    "5,000,000 cells in one row": ("widerow.xlsx", wide_xlsx_row),
    "billion laughs (DTD entities)": ("entities.xlsx", entity_expansion),
    "20 MB comment in the sheet": ("comment.xlsx", giant_comment),
    "CSV: one 100 MB line": ("line.csv", huge_csv_line),
    "CSV: one 100 MB quoted cell": ("cell.csv", huge_csv_cell),
    "CSV: 50,000 columns": ("columns.csv", many_csv_columns),
}


# --- Reading a file in a capped child process (the tests and the bench) ---------------------

_CHILD = r"""
import json, os, sys, django
django.setup()
from transfers.cells import cell_text
from transfers.errors import ImportFileError
from transfers.reading import open_table
path = sys.argv[1]
try:
    with open(path, "rb") as binary:
        table = open_table(binary, name=os.path.basename(path), size=os.path.getsize(path))
        # Like the dry run: a row counts unless all its cells are blank.
        rows = sum(1 for _line, cells in table.rows if any(cell_text(cell) for cell in cells))
    print(json.dumps({"refused": None, "rows": rows}))
except ImportFileError as error:
    print(json.dumps({"refused": str(error)}))
# The peak of this process's own memory since exec (VmHWM): wait4's ru_maxrss also counts what the
# forking parent (a test worker, hundreds of MiB after a long run) had when it forked.
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(json.dumps({"vm_hwm_kib": int(line.split()[1])}))
"""


@dataclass(frozen=True)
class ChildRead:
    printed: dict | None  # {"refused": message or None, "rows": n}; None if it crashed or was killed
    peak_rss_mib: float
    seconds: float
    killed: bool
    stderr: str


def read_in_child(path: Path, *, settings_module: str, limit_mib: int = 3072, timeout: float = 60) -> ChildRead:
    """Read `path` as a dry run does, in a child process whose address space is capped at
    `limit_mib` (an unbounded reader fails there instead of taking the machine) and which is
    killed after `timeout` seconds. Peak RSS comes from wait4."""
    def cap() -> None:
        limit = limit_mib * MiB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], cwd=Path(__file__).resolve().parent.parent,
                             env=env, preexec_fn=cap, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = False
    while True:
        pid, _status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            child.kill()
            killed = True
            _pid, _status, usage = os.wait4(child.pid, 0)
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    lines = [json.loads(line) for line in out.strip().splitlines() if line.startswith("{")] if not killed else []
    peak_kib = next((line["vm_hwm_kib"] for line in lines if "vm_hwm_kib" in line), usage.ru_maxrss)
    printed = next((line for line in lines if "vm_hwm_kib" not in line), None)
    return ChildRead(printed, peak_kib / 1024, seconds, killed, err[-2000:])
