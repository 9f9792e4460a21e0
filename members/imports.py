"""File imports: customer lists, historical purchases and rewards from CSV and XLSX.

How a file travels (see `ImportJob`):

1. Upload. The file is stored (default storage, so a worker on another machine can read it).
2. Dry run (`import_job_analyse`): read the whole file, detect format, encoding and delimiter,
   map the German or English headings, validate every row, match it against the database and
   count new / updated / unchanged / skipped / invalid rows. Nothing is written but the report.
3. Staff confirm (`import_job_confirm`), then `import_job_run` imports the file in ONE
   transaction: any failure rolls the whole file back. The same importer runs again in write
   mode, so what the dry run promised and what is written cannot drift apart; rows that became
   invalid since the dry run stop the import unless staff chose to skip invalid rows.

Small files run in the admin request, large ones as Celery tasks with a progress bar.

Why not django-import-export row by row: it saves one model per row (about 600 rows/s) and
would write balances without the ledger. The importers here stream the file in chunks
(csv module or openpyxl's read-only mode), validate in plain Python, look up each chunk's
customer numbers and e-mails with one query each (one array parameter, tuples back), and write
each chunk with a constant number of set-based statements (`core.db`: COPY for new members,
tier history, tags and consents, one UPDATE for the members that change). Opening balances are
ledger entries: new members are inserted with their balance and `rewards.ledger.points_open_bulk`
books the entries (and checks they add up), existing members go through
`rewards.ledger.points_credit_bulk` (lock, entries, balances). Historical purchases go one by one through
`rewards.purchases.purchase_record`, which runs the earning rules. The resources in
`members/resources.py` and `rewards/resources.py` describe the same columns for exports.

Rules kept everywhere: duplicates are matched on customer number, then e-mail (case-insensitive);
a member repeated within the file is reported and imported once; opening balances are entries
with source "import" and reference "import-opening:<customer number>", so importing the same file
twice changes nothing; nobody gets marketing consent unless the file proves it (yes + date +
source), and that becomes a consent record with source "import".
"""

from __future__ import annotations

import codecs
import copy
import csv
import functools
import gc
import io
import logging
import operator
import re
import secrets
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from itertools import islice
from threading import Lock
from typing import IO, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import dateparse, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core import db
from core.errors import LoyaltyError

from .models import ConsentRecord, ImportJob, Member, Tag, Tier, TierHistory, luhn_check_digit

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024
# Rows read, checked and written together: a constant number of statements per chunk, so fewer
# chunks are fewer round trips and plans (20,000 took 6 % less CPU than 5,000 for a member file);
# a chunk of customers stays a few dozen MB in memory.
CHUNK_ROWS = 20_000
ERRORS_KEPT = 1000
WARNINGS_KEPT = 200
REPORT_TEXT_CHARS = 300  # of one message or column name in a report
OPENING_SOURCE = "import"


class ImportFileError(LoyaltyError):
    """The file as a whole can't be read (format, encoding, headings)."""

    code = "import_file_error"
    default_message = gettext_lazy("The file cannot be imported: %(detail)s")


class ImportFailed(LoyaltyError):
    """A row failed while writing: the transaction is rolled back, nothing is written."""

    code = "import_failed"
    default_message = gettext_lazy("The import stopped at line %(line)s (%(detail)s). Nothing was written.")


class _EncodingFailed(Exception):
    def __init__(self, encoding: str, line: int):
        super().__init__(encoding, line)
        self.encoding = encoding
        self.line = line


# --- Reading files -----------------------------------------------------------------------

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


# Limits that keep reading any file within bounded memory and time (members/xlsx.py has the
# Excel-only ones). A customer list has a few dozen columns and lines of a few hundred characters.
MAX_COLUMNS = 1_000
MAX_RECORD_CHARS = 1024 * 1024  # one CSV record (a quoted cell may span lines)
# A chunk ends early once its rows weigh this much (characters, plus 8 per cell for the list
# slot and the object): 20,000 ordinary rows weigh about 5 million, so only odd files are cut.
CHUNK_WEIGHT = 16 * 1024 * 1024


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


# --- Values as people write them ------------------------------------------------------------

class CellError(ValueError):
    pass


_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


@functools.lru_cache(maxsize=4096)  # salutations, countries, tiers: a handful of spellings a million times
def normalize_heading(text: str) -> str:
    """"E-Mail", "e_mail " and "EMail" are one heading; "Straße" is "strasse"."""
    return re.sub(r"[^a-z0-9]", "", str(text).strip().lower().translate(_UMLAUTS))


def cell_text(value: Any) -> str:
    """A cell as text: numbers from Excel without a trailing ".0", dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


_GERMAN_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})")
_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_TIME = re.compile(r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")


def _date_parts(text: str) -> tuple[int, int, int, str]:
    if match := _GERMAN_DATE.match(text):
        day, month, year = int(match[1]), int(match[2]), match[3]
        # Two-digit years: a date can't be in the future, so "80" is 1980 and "05" is 2005.
        full_year = int(year) if len(year) == 4 else (
            2000 + int(year) if int(year) <= timezone.localdate().year % 100 else 1900 + int(year))
        return full_year, month, day, text[match.end():]
    if match := _ISO_DATE.match(text):
        return int(match[1]), int(match[2]), int(match[3]), text[match.end():]
    if match := _SLASH_DATE.match(text):  # day first, the European order
        return int(match[3]), int(match[2]), int(match[1]), text[match.end():]
    raise CellError(_("“%(value)s” is not a date (use 31.12.1980 or 1980-12-31)") % {"value": text})


def parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = cell_text(value)
    if not text:
        return None
    year, month, day, rest = _date_parts(text)
    if rest.strip() and not _TIME.fullmatch(rest):
        raise CellError(_("“%(value)s” is not a date (use 31.12.1980 or 1980-12-31)") % {"value": text})
    try:
        return date(year, month, day)
    except ValueError:
        raise CellError(_("“%(value)s” is not a possible date") % {"value": text}) from None


def parse_datetime(value: Any, zone: tzinfo | None = None) -> datetime | None:
    """A date, or a date and time ("31.12.2024 18:30"), in the local time zone (`zone`, if the
    caller looked it up once: the lookup costs more than the parsing)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    else:
        text = cell_text(value)
        if not text:
            return None
        year, month, day, rest = _date_parts(text)
        match = _TIME.fullmatch(rest)
        if match is None:
            raise CellError(_("“%(value)s” is not a date and time (use 31.12.2024 18:30)") % {"value": text})
        try:
            moment = datetime(year, month, day, int(match[1] or 0), int(match[2] or 0), int(match[3] or 0))
        except ValueError:
            raise CellError(_("“%(value)s” is not a possible date") % {"value": text}) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, zone)
    return moment


_DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?")
_GERMAN_THOUSANDS = re.compile(r"[+-]?\d{1,3}(\.\d{3})+")
_ENGLISH_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3}){2,}")


def parse_decimal(value: Any) -> Decimal | None:
    """1.234,56 and 1234,56 (German), 1,234.56 and 1234.56 (English), 1'234.50 (Swiss)."""
    if isinstance(value, bool):
        raise CellError(_("“%(value)s” is not a number") % {"value": value})
    if isinstance(value, int | Decimal | float):  # Excel cells arrive as numbers
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite():  # NaN or ±Infinity: not an amount, points or a balance
            raise CellError(_("“%(value)s” is not a number") % {"value": value})
        return number
    text = cell_text(value)
    if not text:
        return None
    compact = re.sub(r"[\s\u00a0'’€]|EUR|CHF", "", text)
    if "," in compact and "." in compact:  # the later one is the decimal separator
        if compact.rfind(",") > compact.rfind("."):
            compact = compact.replace(".", "").replace(",", ".")
        else:
            compact = compact.replace(",", "")
    elif "," in compact:
        compact = compact.replace(",", "") if _ENGLISH_THOUSANDS.fullmatch(compact) else compact.replace(",", ".")
    elif _GERMAN_THOUSANDS.fullmatch(compact):
        compact = compact.replace(".", "")
    if not _DECIMAL.fullmatch(compact):
        raise CellError(_("“%(value)s” is not a number") % {"value": text})
    try:
        return Decimal(compact)
    except InvalidOperation:
        raise CellError(_("“%(value)s” is not a number") % {"value": text}) from None


def memoized(parser: Callable[[Any], Any], size: int = 50_000) -> Callable[[Any], Any]:
    """`parser` with a cache for text cells: join dates, countries and balances repeat across a
    customer list, and each is parsed once. Only results are kept, never errors (an error must be
    reported on every line that has it), and the cache is emptied when full, so memory stays
    bounded. Results are immutable (dates, numbers, strings), so sharing them is safe."""
    cache: dict[str, Any] = {}

    def parse(value: Any) -> Any:
        if type(value) is not str:
            return parser(value)
        try:
            return cache[value]
        except KeyError:
            pass
        result = parser(value)
        if len(cache) >= size:
            cache.clear()
        cache[value] = result
        return result

    return parse


def parse_points(value: Any) -> int | None:
    number = parse_decimal(value)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise CellError(_("points are whole numbers, not “%(value)s”") % {"value": cell_text(value)})
    return int(number)


def parse_money(value: Any) -> Decimal | None:
    number = parse_decimal(value)
    if number is None:
        return None
    # The size first: quantizing a number of more than 28 digits raises InvalidOperation.
    if abs(number) >= Decimal("10000000000"):
        raise CellError(_("“%(value)s” is too large") % {"value": cell_text(value)})
    if number.as_tuple().exponent < -2 and number != number.quantize(Decimal("0.01")):
        raise CellError(_("“%(value)s” has more than two decimal places") % {"value": cell_text(value)})
    return number.quantize(Decimal("0.01"))


_TRUE = {"1", "ja", "j", "yes", "y", "true", "wahr", "x", "on", "an"}
_FALSE = {"0", "nein", "n", "no", "false", "falsch", "off", "aus", "-"}


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = cell_text(value).lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CellError(_("“%(value)s” is neither yes nor no") % {"value": cell_text(value)})


_SALUTATIONS = {
    "frau": "ms", "fr": "ms", "ms": "ms", "mrs": "ms", "miss": "ms", "w": "ms", "weiblich": "ms", "female": "ms",
    "f": "ms", "herr": "mr", "hr": "mr", "mr": "mr", "m": "mr", "maennlich": "mr", "male": "mr",
    "divers": "diverse", "diverse": "diverse", "d": "diverse", "mx": "diverse", "x": "diverse",
    "firma": "", "company": "", "keine": "", "none": "",
}
_LANGUAGES = {
    "de": "de", "deu": "de", "ger": "de", "deutsch": "de", "german": "de", "dede": "de", "deat": "de", "dech": "de",
    "en": "en", "eng": "en", "englisch": "en", "english": "en", "engb": "en", "enus": "en",
}
# ISO 3166-1 alpha-2, and the names and car codes people write in DACH customer lists.
_ISO_CODES = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO
JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR
MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO
RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO_COUNTRIES = frozenset(_ISO_CODES.split())
_COUNTRY_NAMES = {
    "deutschland": "DE", "germany": "DE", "d": "DE", "brd": "DE", "deu": "DE",
    "oesterreich": "AT", "austria": "AT", "a": "AT", "aut": "AT",
    "schweiz": "CH", "switzerland": "CH", "suisse": "CH", "svizzera": "CH", "che": "CH",
    "liechtenstein": "LI", "fl": "LI", "luxemburg": "LU", "luxembourg": "LU", "l": "LU",
    "italien": "IT", "italy": "IT", "i": "IT", "frankreich": "FR", "france": "FR", "f": "FR",
    "niederlande": "NL", "netherlands": "NL", "holland": "NL", "belgien": "BE", "belgium": "BE", "b": "BE",
    "polen": "PL", "poland": "PL", "tschechien": "CZ", "czechia": "CZ", "czechrepublic": "CZ",
    "daenemark": "DK", "denmark": "DK", "dk": "DK", "spanien": "ES", "spain": "ES", "e": "ES",
    "vereinigteskoenigreich": "GB", "grossbritannien": "GB", "unitedkingdom": "GB", "uk": "GB", "england": "GB",
    "vereinigtestaaten": "US", "usa": "US", "unitedstates": "US", "ungarn": "HU", "hungary": "HU",
    "schweden": "SE", "sweden": "SE", "norwegen": "NO", "norway": "NO", "portugal": "PT",
    "slowenien": "SI", "slovenia": "SI", "kroatien": "HR", "croatia": "HR", "tuerkei": "TR", "turkey": "TR",
}
_POSTAL_DIGITS = {"DE": 5, "AT": 4, "CH": 4, "LI": 4}
_PHONE = re.compile(r"[0-9+()/.\- ]+")
_FOUR_DIGITS = re.compile(r"(?:\D*\d){4}")  # a phone number has at least four digits


def parse_country(value: Any) -> str:
    text = cell_text(value)
    code = text.upper()
    if code in ISO_COUNTRIES:
        return code
    if found := _COUNTRY_NAMES.get(normalize_heading(text)):
        return found
    raise CellError(_("unknown country “%(value)s” (use the ISO code, e.g. DE, AT, CH)") % {"value": text})


# --- Reports -------------------------------------------------------------------------------

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


# --- The importers -------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    field: str
    label: Any  # lazy, English source text: what the template and the errors call the column
    aliases: tuple[str, ...]


# Python's cyclic garbage collector runs a young-generation pass every 700 net allocations of
# containers, and an import allocates several per row (cells, the row's dict, tuples for COPY):
# at the default threshold collections were a quarter of an import's Python time, mostly the
# occasional full pass over every object of the process (Django's included) that the steady
# stream of survivors triggers. An import keeps at most a chunk's rows alive and builds no
# reference cycles of its own, so collecting once every IMPORT_GC_THRESHOLD allocations frees
# the same memory, a chunk or so later. Process-wide, so overlapping imports (threads) count in.
IMPORT_GC_THRESHOLD = 50_000
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


def batched(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _chunks(table: Table) -> Iterator[list]:
    """CHUNK_ROWS rows at a time, or fewer if they weigh more than CHUNK_WEIGHT (long cells)."""
    weight = table.weight
    chunk: list = []
    append = chunk.append
    start = weight()
    for row in table.rows:
        append(row)
        if len(chunk) >= CHUNK_ROWS or weight() - start > CHUNK_WEIGHT:
            yield chunk
            chunk = []
            append = chunk.append
            start = weight()
    if chunk:
        yield chunk


class BaseImporter:
    """Reads a table in chunks; subclasses clean rows and match/write a chunk at a time.

    In write mode the caller holds one transaction around `run`; an invalid row raises
    `ImportFailed` (rolling everything back) unless `skip_invalid` is set."""

    kind = ""
    columns: tuple[Column, ...] = ()
    required: tuple[tuple[str, ...], ...] = ()  # each tuple: the file needs one of these columns

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

    # Headings
    def map_headings(self, headings: list[str]) -> None:
        by_alias = {}
        for column in self.columns:
            with translation.override("en"):
                english = str(column.label)  # the exports' column names (resources), in both languages
            for alias in (column.field, english, str(column.label), *column.aliases):
                by_alias[normalize_heading(alias)] = column.field
        seen: set[str] = set()
        for index, heading in enumerate(headings):
            target = by_alias.get(normalize_heading(heading))
            if not heading:
                continue
            if target is None:
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

    def label_of(self, field_name: str) -> str:
        for column in self.columns:
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
            if rows:
                self.process(rows)
            self.report.rows += len(rows)
            if self.progress is not None:
                self.progress(self.report.rows, table.fraction())
        return self.report

    def prepare(self) -> None:
        """Load small lookup tables once per file."""

    def process(self, rows: list[tuple[int, dict]]) -> None:
        raise NotImplementedError

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
        self.report.warning(line, self.column_name(column) if column else "", message)

    def counted(self, outcome: str, number: int = 1) -> None:
        self.report.counts[outcome] += number


def _text(values: dict, name: str, max_length: int, errors: list) -> str:
    value = values.get(name)
    if value is None or value == "":
        return ""
    text = value.strip() if type(value) is str else cell_text(value)  # CSV cells: no call
    if len(text) > max_length:
        errors.append((name, _("at most %(count)s characters") % {"count": max_length}))
    return text


def _parsed(values: dict, name: str, parser: Callable[[Any], Any], errors: list) -> Any:
    value = values.get(name)
    if value is None or value == "":
        return None
    try:
        return parser(value)
    except CellError as error:
        errors.append((name, str(error)))
        return None


# --- Members -----------------------------------------------------------------------------

class _EmailValidator(EmailValidator):
    """Django's e-mail rules with the patterns compiled once: its lazily compiled ones cost more
    per call than the match itself, and an import checks a million addresses."""

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
    domain_regex = re.compile(EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags)
    literal_regex = re.compile(EmailValidator.literal_regex.pattern, EmailValidator.literal_regex.flags)


validate_email = _EmailValidator()

PERSON_FIELDS = ("salutation", "first_name", "last_name", "phone", "birth_date", "street", "postal_code", "city",
                 "country", "language")


@dataclass(slots=True)
class _Known:
    """A member of the database as the import compares it: only the columns it reads."""

    pk: int
    customer_number: str
    email: str
    status: str
    tier_id: int | None
    joined_at: datetime | None
    salutation: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    birth_date: date | None = None
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""
    language: str = ""

    @classmethod
    def from_row(cls, row: tuple) -> _Known:
        known = cls(*row[:16])
        known.joined_at = _db_datetime(known.joined_at)
        if isinstance(known.birth_date, str):
            known.birth_date = dateparse.parse_date(known.birth_date)
        return known

    @classmethod
    def new(cls, pk: int, customer_number: str, email: str, tier_id: int | None) -> _Known:
        """A member this import inserts: what the writes after the insert need to know."""
        return cls(pk, customer_number, email, Member.Status.ACTIVE, tier_id, None)


def _db_datetime(value: Any) -> Any:
    """A datetime from a raw row: a column read through `_utc` is naive UTC."""
    if isinstance(value, datetime) and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


KNOWN_SQL = ", ".join(("id", "customer_number", "email", "status", "tier_id", "joined_at", *PERSON_FIELDS))


def _utc(column: str) -> str:
    """A timestamp column as naive UTC (`_db_datetime` makes it aware again): Django
    replaces psycopg's C loader for timestamptz with a Python one, which cost more per member
    than anything else a re-import does with the row."""
    return f"{column} AT TIME ZONE 'UTC'"
# What an import sets on a new member (every other column gets the model's default) ...
NEW_MEMBER_FIELDS = ("id", "public_id", "customer_number", "card_number", "email", "salutation", "first_name",
                     "last_name", "phone", "birth_date", "street", "postal_code", "city", "country", "language",
                     "joined_at", "tier_id", "points_balance")
# ... and may change on one that exists (the last two: tier and updated_at).
UPDATED_FIELDS = (*PERSON_FIELDS, "email", "joined_at", "tier_id", "updated_at")


@dataclass(slots=True)
class _MemberRow:
    line: int
    data: dict
    member: _Known | None = None
    changes: dict = field(default_factory=dict)
    new_tags: list[int] = field(default_factory=list)
    tier_change: Tier | None = None
    opening: int = 0  # to credit now
    consent: tuple[datetime, str] | None = None  # to record now


def _random_below(bound: int, count: int) -> list[int]:
    """`count` random numbers below `bound` from one call to the system's generator (what
    `secrets.randbelow` reads once per number). Eight bytes each: the bias of the remainder is
    below bound / 2**64, a 200-millionth for card numbers."""
    return [word % bound for word in struct.unpack(f"<{count}Q", secrets.token_bytes(8 * count))]


def _random_customer_numbers(count: int) -> list[str]:
    return [f"K{number:09d}" for number in _random_below(10**9, count)]


def _random_card_numbers(count: int) -> list[str]:
    bodies = [f"9276{number:011d}" for number in _random_below(10**11, count)]
    return [body + luhn_check_digit(body) for body in bodies]


class MemberImporter(BaseImporter):
    kind = ImportJob.Kind.MEMBERS
    columns = (
        Column("customer_number", gettext_lazy("customer number"),
               ("Kundennummer", "Kundennr", "Kd-Nr", "KdNr", "Kunden-ID", "Mitgliedsnummer", "Customer number",
                "Customer no", "Customer ID", "Member number")),
        Column("salutation", gettext_lazy("salutation"), ("Anrede", "Salutation", "Title")),
        Column("first_name", gettext_lazy("first name"), ("Vorname", "First name", "Given name", "Firstname")),
        Column("last_name", gettext_lazy("last name"), ("Nachname", "Familienname", "Name", "Last name", "Surname")),
        Column("email", gettext_lazy("e-mail"), ("E-Mail", "E-Mail-Adresse", "Mail", "Email", "E-mail address")),
        Column("phone", gettext_lazy("phone"), ("Telefon", "Telefonnummer", "Tel", "Mobil", "Handy", "Phone",
                                                 "Phone number", "Mobile")),
        Column("birth_date", gettext_lazy("birth date"), ("Geburtsdatum", "Geburtstag", "Birth date", "Date of birth",
                                                           "Birthday", "DOB")),
        Column("street", gettext_lazy("street"), ("Straße", "Strasse", "Str", "Straße und Hausnummer", "Adresse",
                                                   "Anschrift", "Street", "Address")),
        Column("postal_code", gettext_lazy("postal code"), ("PLZ", "Postleitzahl", "Postal code", "ZIP", "ZIP code",
                                                             "Postcode")),
        Column("city", gettext_lazy("city"), ("Ort", "Stadt", "Wohnort", "City", "Town")),
        Column("country", gettext_lazy("country"), ("Land", "Länderkennzeichen", "Ländercode", "Country",
                                                     "Country code")),
        Column("language", gettext_lazy("language"), ("Sprache", "Language")),
        Column("joined_at", gettext_lazy("join date"), ("Beitrittsdatum", "Beitritt", "Mitglied seit",
                                                         "Anmeldedatum", "Eintrittsdatum", "Join date", "Joined",
                                                         "Joined at", "Member since")),
        Column("tags", gettext_lazy("tags"), ("Tags", "Schlagworte", "Merkmale", "Labels")),
        Column("tier", gettext_lazy("tier"), ("Stufe", "Kartenstufe", "Status-Stufe", "Tier", "Level")),
        Column("opening_balance", gettext_lazy("opening balance"),
               ("Anfangsbestand", "Anfangsbestand/Punkte", "Punkte", "Punktestand", "Startguthaben",
                "Opening balance", "Points", "Balance")),
        Column("consent_email", gettext_lazy("e-mail consent"),
               ("Einwilligung E-Mail", "E-Mail-Einwilligung", "Newsletter", "Werbeeinwilligung",
                "Marketing-Einwilligung", "E-mail consent", "Consent e-mail", "Newsletter consent")),
        Column("consent_date", gettext_lazy("consent date"),
               ("Einwilligungsdatum", "Einwilligung am", "Opt-in-Datum", "DOI-Datum", "Consent date",
                "Consented at", "Opt-in date")),
        Column("consent_source", gettext_lazy("consent source"),
               ("Einwilligungsquelle", "Quelle der Einwilligung", "Opt-in-Quelle", "Consent source",
                "Opt-in source")),
    )
    required = (("customer_number", "email"),)

    def prepare(self) -> None:
        self.first_line_of_number: dict[str, int] = {}
        self.first_line_of_email: dict[str, int] = {}
        self.generated_numbers: set[str] = set()
        self.first_line_of_member: dict[int, int] = {}  # members of the database this file matched
        self.tiers: dict[str, Tier] = {}
        for tier in Tier.objects.all():
            for key in (tier.name_de, tier.name_en, str(tier.rank)):
                if key:
                    self.tiers[normalize_heading(key)] = tier
        self.entry_tier = min(self.tiers.values(), key=lambda tier: tier.rank) if self.tiers else None
        self.tag_ids = {name.lower(): pk for pk, name in Tag.objects.values_list("pk", "name")}
        self.today = timezone.localdate()
        self.now = timezone.now()
        self.reason = _("Import %(file)s") % {"file": self.label} if self.label else _("Import")
        zone = timezone.get_current_timezone()
        self.parse_date = memoized(parse_date)
        self.parse_datetime = memoized(functools.partial(parse_datetime, zone=zone))
        self.parse_points = memoized(parse_points)
        self.parse_country = memoized(parse_country)

    # Cleaning one row: plain code, this runs a million times
    def clean(self, values: dict) -> tuple[dict, list[tuple[str, str]]]:
        errors: list[tuple[str, str]] = []
        data: dict[str, Any] = {}
        data["customer_number"] = _text(values, "customer_number", 40, errors)
        email = _text(values, "email", 254, errors)
        if email:
            try:
                validate_email(email)
            except ValidationError:
                errors.append(("email", _("“%(value)s” is not a valid e-mail address") % {"value": email}))
        data["email"] = email
        if not data["customer_number"] and not email and not errors:
            errors.append(("", _("a customer number or an e-mail is needed to recognise the member again")))
        salutation = _text(values, "salutation", 20, errors)
        if salutation:
            key = normalize_heading(salutation)
            if key not in _SALUTATIONS:
                errors.append(("salutation", _("unknown salutation “%(value)s” (Frau, Herr, divers)")
                               % {"value": salutation}))
            data["salutation"] = _SALUTATIONS.get(key, "")
        for name, length in (("first_name", 100), ("last_name", 100), ("street", 200), ("city", 100)):
            if text := _text(values, name, length, errors):
                data[name] = text
        if phone := _text(values, "phone", 40, errors):
            if not _PHONE.fullmatch(phone) or not _FOUR_DIGITS.match(phone):
                errors.append(("phone", _("“%(value)s” is not a phone number") % {"value": phone}))
            data["phone"] = phone
        birth_date = _parsed(values, "birth_date", self.parse_date, errors)
        if birth_date is not None:
            if birth_date > self.today:
                errors.append(("birth_date", _("the birth date %(date)s is in the future")
                               % {"date": birth_date.strftime("%d.%m.%Y")}))
            elif birth_date.year < 1900:
                errors.append(("birth_date", _("the birth date %(date)s is too long ago")
                               % {"date": birth_date.strftime("%d.%m.%Y")}))
            data["birth_date"] = birth_date
        country = _parsed(values, "country", self.parse_country, errors)
        if country:
            data["country"] = country
        if postal := _text(values, "postal_code", 20, errors):
            digits = _POSTAL_DIGITS.get(country or "DE")
            if digits and postal.isdigit() and len(postal) == digits - 1 and (country or "DE") == "DE":
                postal = postal.zfill(digits)  # Excel drops the leading zero of 01067 Dresden
            if digits and (not postal.isdigit() or len(postal) != digits):
                errors.append(("postal_code", _("“%(value)s” is not a postal code of %(country)s (%(digits)s digits)")
                               % {"value": postal, "country": country or "DE", "digits": digits}))
            data["postal_code"] = postal
        if language := _text(values, "language", 20, errors):
            code = _LANGUAGES.get(normalize_heading(language))
            if code is None:
                errors.append(("language", _("unknown language “%(value)s” (de or en)") % {"value": language}))
            data["language"] = code
        joined = _parsed(values, "joined_at", self.parse_datetime, errors)
        if joined is not None:
            if joined.date() > self.today:
                errors.append(("joined_at", _("the join date is in the future")))
            data["joined_at"] = joined
        if tags := _text(values, "tags", 1000, errors):
            names = [name.strip() for name in re.split(r"[,;|]", tags) if name.strip()]
            if any(len(name) > 50 for name in names):
                errors.append(("tags", _("a tag has at most 50 characters")))
            data["tags"] = list(dict.fromkeys(names))
        if tier_name := _text(values, "tier", 80, errors):
            tier = self.tiers.get(normalize_heading(tier_name))
            if tier is None:
                errors.append(("tier", _("unknown tier “%(value)s”") % {"value": tier_name}))
            data["tier"] = tier
        opening = _parsed(values, "opening_balance", self.parse_points, errors)
        if opening is not None:
            if opening < 0:
                errors.append(("opening_balance", _("an opening balance cannot be negative")))
            elif opening > 10_000_000:
                errors.append(("opening_balance", _("an opening balance above 10,000,000 points is not plausible")))
            data["opening_balance"] = opening
        self._clean_consent(values, data, errors)
        return data, errors

    def _clean_consent(self, values: dict, data: dict, errors: list) -> None:
        consent = _parsed(values, "consent_email", parse_bool, errors)
        when = _parsed(values, "consent_date", self.parse_datetime, errors)
        source = _text(values, "consent_source", 200, errors)
        if when is not None and when.date() > self.today:
            errors.append(("consent_date", _("the consent date is in the future")))
        if consent:
            if when is None or not source:
                data["consent_unproven"] = True  # reported as a note, never recorded
            else:
                data["consent"] = (when, source)

    def process(self, rows: list[tuple[int, dict]]) -> None:
        candidates: list[_MemberRow] = []
        for line, values in rows:
            data, errors = self.clean(values)
            if errors:
                self.invalid(line, errors)
                continue
            number, email_key = data["customer_number"], data["email"].lower()
            first = self.first_line_of_number.get(number) if number else None
            if first is None and email_key:
                first = self.first_line_of_email.get(email_key)
            if first is not None:
                self.skipped(line, "", _("the same member as line %(line)s: imported once") % {"line": first})
                continue
            if number:
                self.first_line_of_number[number] = line
            if email_key:
                self.first_line_of_email[email_key] = line
            if data.get("consent_unproven"):
                self.report.warning(line, self.column_name("consent_email"),
                                    _("consent without date and source is not imported"))
            candidates.append(_MemberRow(line=line, data=data))
        if candidates:
            self._match(candidates)

    def _match(self, candidates: list[_MemberRow]) -> None:
        by_number, by_email = self._known_members(candidates)

        matched: list[_MemberRow] = []
        new: list[_MemberRow] = []
        for row in candidates:
            data = row.data
            number, email_key = data["customer_number"], data["email"].lower()
            member = by_number.get(number) if number else None
            owner = by_email.get(email_key) if email_key else None
            if member is not None and number in self.generated_numbers:
                self.invalid(row.line, [("customer_number", _("this import gave %(number)s to another new member")
                                         % {"number": number})])
                continue
            if member is None and owner is not None:
                if number and owner.customer_number != number:
                    self.invalid(row.line, [("email", _("the e-mail belongs to customer %(number)s")
                                             % {"number": owner.customer_number})])
                    continue
                member = owner
            elif member is not None and owner is not None and owner.pk != member.pk:
                self.invalid(row.line, [("email", _("the e-mail belongs to customer %(number)s")
                                         % {"number": owner.customer_number})])
                continue
            if member is None:
                if data.get("consent") and not data["email"]:
                    self.report.warning(row.line, self.column_name("consent_email"),
                                        _("e-mail consent for a member without e-mail is not imported"))
                new.append(row)
                continue
            if (first := self.first_line_of_member.get(member.pk)) is not None:
                self.skipped(row.line, "", _("the same member as line %(line)s: imported once") % {"line": first})
                continue
            self.first_line_of_member[member.pk] = row.line
            if member.status in (Member.Status.MERGED, Member.Status.ERASED):
                self.skipped(row.line, "customer_number", _("customer %(number)s was %(status)s: not imported")
                             % {"number": member.customer_number, "status": Member.Status(member.status).label})
                continue
            row.member = member
            matched.append(row)
        if matched:
            self._compare(matched)
        self.counted("new", len(new))
        if self.write:
            self._create(new)
            self._update([row for row in matched if row.member is not None and self._has_changes(row)])

    def _known_members(self, candidates: list[_MemberRow]) -> tuple[dict[str, _Known], dict[str, _Known]]:
        """The chunk's members in the database, by customer number and by lower-case e-mail.

        Tuples, not model instances (building them cost more than the queries), and e-mails are
        looked up only where the customer number didn't already find the member with that
        e-mail (on a re-import: nowhere). In write mode the rows are locked (primary-key order,
        as every service locks) before the import compares them, so what it writes is decided on
        rows nobody else can change meanwhile."""
        lock = " ORDER BY id FOR UPDATE" if self.write else ""
        known = KNOWN_SQL.replace("joined_at", _utc("joined_at"))
        numbers = [row.data["customer_number"] for row in candidates if row.data["customer_number"]]
        by_number = {known.customer_number: known for known in map(_Known.from_row, db.select_in(
            f"SELECT {known} FROM members_member WHERE customer_number {{in}}{lock}",  # noqa: S608 (constants)
            numbers))}
        emails = []
        for row in candidates:
            email_key = row.data["email"].lower()
            found = by_number.get(row.data["customer_number"])
            if email_key and (found is None or found.email.lower() != email_key):
                emails.append(email_key)
        by_email = {known_row[-1]: _Known.from_row(known_row) for known_row in db.select_in(
            f"SELECT {known}, LOWER(email) FROM members_member "  # noqa: S608 (constants)
            f"WHERE email <> '' AND LOWER(email) {{in}}{lock}", emails)}
        for found in by_number.values():  # the e-mails the customer numbers found are known too
            if found.email:
                by_email.setdefault(found.email.lower(), found)
        return by_number, by_email

    @staticmethod
    def _has_changes(row: _MemberRow) -> bool:
        return bool(row.changes or row.new_tags or row.tier_change or row.opening or row.consent)

    def _compare(self, rows: list[_MemberRow]) -> None:
        """What an import would change on members that exist: fields, tags, tier, credit, consent."""
        tagged = [row.member.pk for row in rows if row.data.get("tags")]
        tags_of: dict[int, set[int]] = {}
        for member_id, tag_id in db.select_in("SELECT member_id, tag_id FROM members_member_tags "
                                                "WHERE member_id {in}", tagged):
            tags_of.setdefault(member_id, set()).add(tag_id)
        references = [f"import-opening:{row.member.customer_number}" for row in rows
                      if row.data.get("opening_balance")]
        # `reference <> ''` repeats the unique index's condition, so PostgreSQL uses the index.
        booked = dict(db.select_in("SELECT reference, points FROM rewards_pointentry "
                                     "WHERE source = %s AND reference <> '' AND reference {in}",
                                     references, [OPENING_SOURCE]))
        consenting = [row.member.pk for row in rows if row.data.get("consent")]
        consented = {(member_id, _db_datetime(when)) for member_id, when in db.select_in(
            f"SELECT member_id, {_utc('confirmed_at')} FROM members_consentrecord "  # noqa: S608 (constants)
            "WHERE purpose = %s AND source = %s AND granted AND member_id {in}",
            consenting, [ConsentRecord.Purpose.EMAIL, ConsentRecord.Source.IMPORT])}

        for row in rows:
            member, data = row.member, row.data
            for name in PERSON_FIELDS:
                value = data.get(name)
                if value not in (None, "") and getattr(member, name) != value:
                    row.changes[name] = value
            if data["email"] and data["email"].lower() != member.email.lower():
                row.changes["email"] = data["email"]
            joined = data.get("joined_at")
            if joined is not None and joined < member.joined_at:
                row.changes["joined_at"] = joined  # the earlier join date wins: members keep their seniority
            tier = data.get("tier")
            if tier is not None and tier.pk != member.tier_id:
                row.tier_change = tier
            if data.get("tags"):
                have = tags_of.get(member.pk, set())
                row.new_tags = [name for name in data["tags"] if self.tag_ids.get(name.lower()) not in have]
            opening = data.get("opening_balance")
            if opening:
                previous = booked.get(f"import-opening:{member.customer_number}")
                if previous is None:
                    row.opening = opening
                elif previous != opening:
                    row.member = None
                    self.invalid(row.line, [("opening_balance",
                                             _("an opening balance of %(points)s points was imported before; "
                                               "corrections are adjustments on the member page")
                                             % {"points": previous})])
                    continue
            if (consent := data.get("consent")) and (member.pk, consent[0]) not in consented:
                if member.email or data["email"]:
                    row.consent = consent
                else:
                    self.report.warning(row.line, self.column_name("consent_email"),
                                        _("e-mail consent for a member without e-mail is not imported"))
            self.counted("updated" if self._has_changes(row) else "unchanged")

    # Writing (write mode only, inside the caller's transaction): a constant number of set-based
    # statements per chunk (core.db), whatever the chunk's size.
    def _unique_numbers(self, count: int, make: Callable[[int], list[str]], column: str,
                        avoid: Iterable[str] = ()) -> list[str]:
        """Random numbers nobody has (`make(n)` draws n): checked against the database (which
        already holds this import's earlier chunks) with one query per round, and against `avoid`."""
        numbers: set[str] = set()
        while len(numbers) < count:
            batch = set(make(count - len(numbers))) - numbers
            batch = {number for number in batch if number not in avoid}
            taken = {found for (found,) in db.select_in(
                f"SELECT {column} FROM members_member WHERE {column} {{in}}", list(batch))}  # noqa: S608 (constants)
            numbers |= batch - taken
        return list(numbers)

    def _create(self, rows: list[_MemberRow]) -> None:
        if not rows:
            return
        missing = sum(1 for row in rows if not row.data["customer_number"])
        # Generated customer numbers also avoid every number the file used so far; they are
        # remembered, so a later row carrying one of them is refused, not taken for this member.
        fresh_numbers = self._unique_numbers(missing, _random_customer_numbers, "customer_number",
                                             avoid=self.first_line_of_number)
        self.generated_numbers.update(fresh_numbers)
        generated = iter(fresh_numbers)
        cards = iter(self._unique_numbers(len(rows), _random_card_numbers, "card_number"))
        entry_tier_id = self.entry_tier.pk if self.entry_tier is not None else None
        members, history = [], []
        for row, pk in zip(rows, db.next_ids(Member, len(rows)), strict=True):
            data = row.data
            tier = data.get("tier")
            tier_id = tier.pk if tier is not None else entry_tier_id
            number = data["customer_number"] or next(generated)
            members.append((pk, uuid.uuid4(), number, next(cards), data["email"], data.get("salutation") or "",
                            data.get("first_name", ""), data.get("last_name", ""), data.get("phone", ""),
                            data.get("birth_date"), data.get("street", ""), data.get("postal_code", ""),
                            data.get("city", ""), data.get("country") or "DE",
                            data.get("language") or Member.Language.GERMAN, data.get("joined_at") or self.now,
                            tier_id, data.get("opening_balance") or 0))
            if tier_id is not None:
                history.append((pk, tier_id))
            row.member = _Known.new(pk, number, data["email"], tier_id)
            row.new_tags = data.get("tags") or []
            row.opening = data.get("opening_balance") or 0
            row.consent = data.get("consent") if data["email"] else None
        db.insert_rows(Member, NEW_MEMBER_FIELDS, members, now=self.now)
        staff_id = self.staff_user.pk if self.staff_user is not None else None
        db.insert_rows(TierHistory, ("member_id", "to_tier_id", "cause", "reason", "created_by_id", "created_at"),
                         [(pk, tier_id, TierHistory.Cause.ENROLMENT, self.reason, staff_id, self.now)
                          for pk, tier_id in history], now=self.now)
        self._write_extras(rows, new=True)

    def _update(self, rows: list[_MemberRow]) -> None:
        if not rows:
            return
        changed = [row for row in rows if row.changes or row.tier_change]
        staff_id = self.staff_user.pk if self.staff_user is not None else None
        # One statement for every changed member: a column the row doesn't change is None, and
        # None means "keep" (the import never empties a field).
        db.update_rows(Member, UPDATED_FIELDS, [
            (row.member.pk, *(row.changes.get(name) for name in UPDATED_FIELDS[:-2]),
             row.tier_change.pk if row.tier_change is not None else None, self.now)
            for row in changed])
        db.insert_rows(
            TierHistory, ("member_id", "from_tier_id", "to_tier_id", "cause", "reason", "created_by_id", "created_at"),
            [(row.member.pk, row.member.tier_id, row.tier_change.pk, TierHistory.Cause.STAFF, self.reason, staff_id,
              self.now) for row in changed if row.tier_change is not None], now=self.now)
        self._write_extras(rows, new=False)

    def _write_extras(self, rows: list[_MemberRow], *, new: bool) -> None:
        from rewards.ledger import BulkCredit, points_credit_bulk, points_open_bulk
        from rewards.models import PointEntry

        names = {name for row in rows for name in row.new_tags}
        unknown = [name for name in names if name.lower() not in self.tag_ids]
        if unknown:
            Tag.objects.bulk_create([Tag(name=name) for name in unknown], ignore_conflicts=True)
            for pk, name in Tag.objects.filter(name__in=unknown).values_list("pk", "name"):
                self.tag_ids[name.lower()] = pk
        db.insert_rows(Member.tags.through, ("member_id", "tag_id"),
                         [(row.member.pk, self.tag_ids[name.lower()]) for row in rows for name in row.new_tags],
                         # A new member has no tags yet: COPY. One that exists may have been tagged
                         # meanwhile, so its rows skip conflicts.
                         now=self.now, ignore_conflicts=not new)
        staff_id = self.staff_user.pk if self.staff_user is not None else None
        db.insert_rows(
            ConsentRecord, ("member_id", "purpose", "granted", "source", "text_version", "confirmed_at", "created_at",
                            "created_by_id"),
            # Dated when the member agreed: a withdrawal recorded after that date stays the latest
            # record (and so the member's choice), an older one is superseded, as it should be.
            [(row.member.pk, ConsentRecord.Purpose.EMAIL, True, ConsentRecord.Source.IMPORT, row.consent[1][:40],
              row.consent[0], row.consent[0], staff_id) for row in rows if row.consent], now=self.now)
        credits = [BulkCredit(member_id=row.member.pk, points=row.opening,
                              reference=f"import-opening:{row.member.customer_number}")
                   for row in rows if row.opening]
        if credits:
            # ADJUST, not BONUS: migrated balances are not points earned in the tier window (the
            # file's tier column says where the member stands). New members were inserted with
            # their opening balance, so only the entries are left (points_open_bulk checks that).
            book = points_open_bulk if new else points_credit_bulk
            book(credits=credits, source=OPENING_SOURCE, kind=PointEntry.Kind.ADJUST,
                 reason=_("Opening balance (import)"), created_by=self.staff_user)


# --- Historical purchases ------------------------------------------------------------------

_CURRENCIES = {"eur": "EUR", "€": "EUR", "euro": "EUR", "chf": "CHF", "fr": "CHF", "sfr": "CHF", "franken": "CHF"}
_CHANNELS = {"store": "store", "filiale": "store", "laden": "store", "markt": "store", "pos": "store",
             "online": "online", "webshop": "online", "onlineshop": "online", "shop": "online", "app": "app"}


class PurchaseImporter(BaseImporter):
    kind = ImportJob.Kind.PURCHASES
    columns = (
        Column("customer_number", gettext_lazy("customer number"),
               ("Kundennummer", "Kundennr", "Kd-Nr", "Customer number", "Customer no", "Customer ID")),
        Column("email", gettext_lazy("e-mail"), ("E-Mail", "Mail", "Email")),
        Column("order_reference", gettext_lazy("order reference"),
               ("Bestellnummer", "Belegnummer", "Bonnummer", "Rechnungsnummer", "Auftragsnummer", "Order reference",
                "Order number", "Order ID", "Receipt")),
        Column("occurred_at", gettext_lazy("date"), ("Datum", "Kaufdatum", "Einkaufsdatum", "Belegdatum", "Date",
                                                      "Purchase date", "Purchased at")),
        Column("amount", gettext_lazy("amount"), ("Betrag", "Umsatz", "Summe", "Bruttobetrag", "Amount", "Total")),
        Column("currency", gettext_lazy("currency"), ("Währung", "Waehrung", "Currency")),
        Column("store", gettext_lazy("store"), ("Filiale", "Filialnummer", "Markt", "Store", "Store code")),
        Column("channel", gettext_lazy("channel"), ("Kanal", "Vertriebskanal", "Channel")),
    )
    required = (("customer_number", "email"), ("order_reference",), ("occurred_at",), ("amount",))

    def prepare(self) -> None:
        from partners.models import Partner

        partner_id = self.options.get("partner_id")
        self.partner = Partner.objects.filter(pk=partner_id).first() if partner_id else None
        if self.partner is None:
            raise ImportFileError(detail=_("choose the partner the purchases were made with"))
        self.stores = {normalize_heading(store.code): store for store in self.partner.stores.all()}
        self.first_line_of_reference: dict[str, int] = {}
        self.now = timezone.now()

    def clean(self, values: dict) -> tuple[dict, list]:
        errors: list[tuple[str, str]] = []
        data: dict[str, Any] = {"customer_number": _text(values, "customer_number", 40, errors),
                                "email": _text(values, "email", 254, errors)}
        if not data["customer_number"] and not data["email"]:
            errors.append(("", _("a customer number or an e-mail is needed")))
        data["order_reference"] = _text(values, "order_reference", 80, errors)
        if not data["order_reference"]:
            errors.append(("order_reference", _("the order reference is missing")))
        occurred = _parsed(values, "occurred_at", parse_datetime, errors)
        if occurred is None and not any(column == "occurred_at" for column, _m in errors):
            errors.append(("occurred_at", _("the date is missing")))
        elif occurred is not None and occurred > self.now:
            errors.append(("occurred_at", _("the purchase date is in the future")))
        data["occurred_at"] = occurred
        amount = _parsed(values, "amount", parse_money, errors)
        if amount is None and not any(column == "amount" for column, _m in errors):
            errors.append(("amount", _("the amount is missing")))
        elif amount is not None and amount <= 0:
            errors.append(("amount", _("the amount must be positive (returns are not imported)")))
        data["amount"] = amount
        currency = _text(values, "currency", 10, errors)
        data["currency"] = _CURRENCIES.get(currency.lower(), "") if currency else "EUR"
        if not data["currency"]:
            errors.append(("currency", _("unknown currency “%(value)s” (EUR or CHF)") % {"value": currency}))
        store = _text(values, "store", 40, errors)
        data["store"] = self.stores.get(normalize_heading(store)) if store else None
        if store and data["store"] is None:
            errors.append(("store", _("%(partner)s has no store “%(value)s”")
                           % {"partner": self.partner, "value": store}))
        channel = _text(values, "channel", 20, errors)
        data["channel"] = _CHANNELS.get(normalize_heading(channel), "") if channel else "store"
        if not data["channel"]:
            errors.append(("channel", _("unknown channel “%(value)s” (store, online, app)") % {"value": channel}))
        return data, errors

    def process(self, rows: list[tuple[int, dict]]) -> None:
        candidates = []
        for line, values in rows:
            data, errors = self.clean(values)
            if errors:
                self.invalid(line, errors)
                continue
            first = self.first_line_of_reference.get(data["order_reference"])
            if first is not None:
                self.skipped(line, "order_reference", _("the same order reference as line %(line)s: imported once")
                             % {"line": first})
                continue
            self.first_line_of_reference[data["order_reference"]] = line
            candidates.append((line, data))
        if candidates:
            self._match(candidates)

    def _match(self, candidates: list[tuple[int, dict]]) -> None:
        from rewards.models import Purchase
        from rewards.purchases import purchase_record

        numbers = [data["customer_number"] for _line, data in candidates if data["customer_number"]]
        emails = [data["email"].lower() for _line, data in candidates if data["email"]]
        by_number = {m.customer_number: m for m in Member.objects.filter(customer_number__in=numbers)} \
            if numbers else {}
        by_email = {m.email_lower: m for m in Member.objects.annotate(email_lower=Lower("email"))
                    .filter(email_lower__in=emails).exclude(email="")} if emails else {}
        existing = dict(Purchase.objects.filter(
            partner=self.partner, order_reference__in=[data["order_reference"] for _line, data in candidates])
            .values_list("order_reference", "member_id"))
        survivors = {}
        for line, data in candidates:
            by_no = by_number.get(data["customer_number"]) if data["customer_number"] else None
            by_mail = by_email.get(data["email"].lower()) if data["email"] else None
            if data["customer_number"] and by_no is None:
                self.invalid(line, [("customer_number", _("no member has the customer number %(number)s")
                                     % {"number": data["customer_number"]})])
                continue
            if by_no is not None and by_mail is not None and by_no.pk != by_mail.pk:
                self.invalid(line, [("email", _("the e-mail belongs to customer %(number)s")
                                     % {"number": by_mail.customer_number})])
                continue
            member = by_no or by_mail
            if member is None:
                self.invalid(line, [("email", _("no member has the e-mail %(email)s") % {"email": data["email"]})])
                continue
            if member.status == Member.Status.MERGED and member.merged_into_id:
                # Purchases of a merged duplicate belong to the survivor, as the merge moved them.
                member = survivors.get(member.merged_into_id) or Member.objects.get(pk=member.merged_into_id)
                survivors[member.pk] = member
            owner = existing.get(data["order_reference"])
            if owner is not None:
                if owner != member.pk:
                    self.invalid(line, [("order_reference", _("this order reference belongs to another member"))])
                else:
                    self.counted("unchanged")
                continue
            if member.status != Member.Status.ACTIVE:
                self.invalid(line, [("customer_number", _("customer %(number)s is %(status)s")
                                     % {"number": member.customer_number, "status": member.get_status_display()})])
                continue
            self.counted("new")
            if self.write:
                try:
                    purchase_record(member_id=member.pk, partner=self.partner, order_reference=data["order_reference"],
                                    amount=data["amount"], currency=data["currency"], occurred_at=data["occurred_at"],
                                    store=data["store"], channel=data["channel"], booked_at=data["occurred_at"])
                except LoyaltyError as error:
                    raise ImportFailed(line=line, detail=str(error)) from error


# --- Rewards -------------------------------------------------------------------------------

_REWARD_KINDS = {
    "amount": "amount", "wertgutschein": "amount", "gutschein": "amount", "amountvoucher": "amount",
    "percent": "percent", "rabattgutschein": "percent", "prozentgutschein": "percent", "percentvoucher": "percent",
    "product": "product", "gratisprodukt": "product", "produkt": "product", "freeproduct": "product",
    "experience": "experience", "erlebnis": "experience", "event": "experience", "veranstaltung": "experience",
    "donation": "donation", "spende": "donation",
}


class RewardImporter(BaseImporter):
    """The catalogue: plain rows, matched by German name (case-insensitive); no ledger involved."""

    kind = ImportJob.Kind.REWARDS
    columns = (
        Column("name_de", gettext_lazy("name (German)"), ("Name", "Bezeichnung", "Name (Deutsch)", "Prämie",
                                                           "Name DE", "Name (German)", "Reward")),
        Column("name_en", gettext_lazy("name (English)"), ("Name (Englisch)", "Name EN", "Name (English)")),
        Column("kind", gettext_lazy("kind"), ("Art", "Typ", "Kind", "Type")),
        Column("points_cost", gettext_lazy("points"), ("Punkte", "Punktepreis", "Points", "Points cost")),
        Column("value", gettext_lazy("value"), ("Wert", "Value")),
        Column("currency", gettext_lazy("currency"), ("Währung", "Currency")),
        Column("stock", gettext_lazy("stock"), ("Bestand", "Lagerbestand", "Stock")),
        Column("limit_per_member", gettext_lazy("limit per member"), ("Limit pro Mitglied", "Limit",
                                                                       "Limit per member")),
        Column("min_tier", gettext_lazy("minimum tier"), ("Mindeststufe", "Stufe", "Minimum tier", "Tier")),
        Column("valid_from", gettext_lazy("redeemable from"), ("Gültig ab", "Einlösbar ab", "Valid from")),
        Column("valid_until", gettext_lazy("redeemable until"), ("Gültig bis", "Einlösbar bis", "Valid until")),
        Column("description_de", gettext_lazy("description (German)"), ("Beschreibung", "Beschreibung (Deutsch)",
                                                                         "Description (German)")),
        Column("description_en", gettext_lazy("description (English)"), ("Beschreibung (Englisch)",
                                                                          "Description (English)", "Description")),
        Column("active", gettext_lazy("active"), ("Aktiv", "Active")),
        Column("in_catalogue", gettext_lazy("in the catalogue"), ("Im Katalog", "Katalog", "In catalogue")),
    )
    required = (("name_de",),)
    OPTIONAL_FIELDS = ("name_en", "kind", "points_cost", "value", "currency", "stock", "limit_per_member", "min_tier",
                       "valid_from", "valid_until", "description_de", "description_en", "active", "in_catalogue")

    def prepare(self) -> None:
        from rewards.models import Reward

        self.tiers = {}
        for tier in Tier.objects.all():
            for key in (tier.name_de, tier.name_en, str(tier.rank)):
                if key:
                    self.tiers[normalize_heading(key)] = tier
        self.rewards = {reward.name_de.lower(): reward for reward in Reward.objects.all()}
        self.first_line_of_name: dict[str, int] = {}

    def clean(self, values: dict) -> tuple[dict, list]:
        errors: list[tuple[str, str]] = []
        data: dict[str, Any] = {"name_de": _text(values, "name_de", 120, errors)}
        if not data["name_de"]:
            errors.append(("name_de", _("the name is missing")))
        for name, length in (("name_en", 120), ("description_de", 5000), ("description_en", 5000)):
            if name in values:
                data[name] = _text(values, name, length, errors)
        if kind := _text(values, "kind", 40, errors):
            data["kind"] = _REWARD_KINDS.get(normalize_heading(kind))
            if data["kind"] is None:
                errors.append(("kind", _("unknown kind “%(value)s”") % {"value": kind}))
        for name in ("points_cost", "stock", "limit_per_member"):
            number = _parsed(values, name, parse_points, errors)
            if number is not None:
                if number < 0 or (name == "points_cost" and number == 0):
                    errors.append((name, _("must be positive")))
                data[name] = number
        value = _parsed(values, "value", parse_money, errors)
        if value is not None:
            data["value"] = value
        if currency := _text(values, "currency", 10, errors):
            data["currency"] = _CURRENCIES.get(currency.lower())
            if data["currency"] is None:
                errors.append(("currency", _("unknown currency “%(value)s” (EUR or CHF)") % {"value": currency}))
        if tier_name := _text(values, "min_tier", 80, errors):
            data["min_tier"] = self.tiers.get(normalize_heading(tier_name))
            if data["min_tier"] is None:
                errors.append(("min_tier", _("unknown tier “%(value)s”") % {"value": tier_name}))
        for name in ("valid_from", "valid_until"):
            moment = _parsed(values, name, parse_datetime, errors)
            if moment is not None:
                data[name] = moment
        if data.get("valid_from") and data.get("valid_until") and data["valid_until"] < data["valid_from"]:
            errors.append(("valid_until", _("ends before it begins")))
        for name in ("active", "in_catalogue"):
            flag = _parsed(values, name, parse_bool, errors)
            if flag is not None:
                data[name] = flag
        return data, errors

    def process(self, rows: list[tuple[int, dict]]) -> None:
        from rewards.models import Reward

        for line, values in rows:
            data, errors = self.clean(values)
            key = data["name_de"].lower()
            if not errors and (first := self.first_line_of_name.get(key)):
                self.skipped(line, "name_de", _("the same reward as line %(line)s: imported once") % {"line": first})
                continue
            reward = self.rewards.get(key)
            if not errors and reward is None:
                for name in ("kind", "points_cost"):
                    if data.get(name) is None:
                        errors.append((name, _("needed for a new reward")))
            if errors:
                self.invalid(line, errors)
                continue
            self.first_line_of_name[key] = line
            if reward is None:
                reward = Reward(**{name: value for name, value in data.items() if value is not None})
                changes = data
                outcome = "new"
            else:
                changes = {name: value for name, value in data.items()
                           if name in self.OPTIONAL_FIELDS and getattr(reward, name) != value}
                if "stock" in changes:
                    # Stock is a counter that redemptions move: an absolute number from a file would
                    # undo them. Restocking is a relative change in the console (reward_stock_change).
                    del changes["stock"]
                    self.report.warning(line, self.column_name("stock"),
                                        _("the stock of an existing reward is not changed by an import"))
                if not changes:
                    self.counted("unchanged")
                    continue
                reward = copy.copy(reward)  # the cached row stays as the database has it
                for name, value in changes.items():
                    setattr(reward, name, value)
                outcome = "updated"
            errors = self._catalogue_rules(reward)
            try:
                reward.full_clean()
            except ValidationError as error:
                errors += [(name if name in self.heading else "", " ".join(messages))
                           for name, messages in error.message_dict.items()]
            if errors:
                self.invalid(line, errors)
                continue
            self.counted(outcome)
            if self.write:
                if outcome == "new":
                    reward.save(force_insert=True)
                else:  # only what the file changes: never write back a stock read before
                    Reward.objects.filter(pk=reward.pk).update(**changes)
                self.rewards[key] = reward

    @staticmethod
    def _catalogue_rules(reward) -> list[tuple[str, str]]:
        """The rules the console's reward form applies."""
        from rewards.models import Reward

        errors = []
        if reward.kind in (Reward.Kind.AMOUNT_VOUCHER, Reward.Kind.PERCENT_VOUCHER) and not reward.value:
            errors.append(("value", _("an amount or percent voucher needs its value")))
        if reward.kind == Reward.Kind.PERCENT_VOUCHER and reward.value and reward.value > 100:
            errors.append(("value", _("a percentage cannot be more than 100")))
        if reward.kind == Reward.Kind.AMOUNT_VOUCHER and not reward.currency:
            errors.append(("currency", _("an amount voucher needs its currency")))
        return errors


IMPORTERS: dict[str, type[BaseImporter]] = {
    ImportJob.Kind.MEMBERS: MemberImporter,
    ImportJob.Kind.PURCHASES: PurchaseImporter,
    ImportJob.Kind.REWARDS: RewardImporter,
}


def import_table(table: Table, *, kind: str, write: bool, skip_invalid: bool = False,
                 staff_user: AbstractBaseUser | None = None, label: str = "", options: dict | None = None,
                 progress: Progress | None = None) -> Report:
    """Dry run (write=False) or import (write=True, in the caller's transaction) of one table."""
    importer = IMPORTERS[kind](write=write, skip_invalid=skip_invalid, staff_user=staff_user, label=label,
                               options=options, progress=progress)
    return importer.run(table)


# --- Jobs: the services the admin and the Celery tasks call ---------------------------------

def sync_limit_bytes() -> int:
    """Files up to this size run in the admin request; larger ones as Celery tasks."""
    return getattr(settings, "LOYALTY_IMPORT_SYNC_MAX_BYTES", 2_000_000)


class _ProgressWriter:
    """Writes a job's progress where the admin can see it.

    During the import the job's own transaction is open for minutes and its writes are invisible
    to everybody else, so progress goes through a second, autocommitting connection."""

    def __init__(self, job_id: int, rows_total: int | None):
        self.job_id = job_id
        self.rows_total = rows_total
        self.side = None

    def __call__(self, rows: int, fraction: float) -> None:
        if self.rows_total:
            fraction = rows / self.rows_total
        percent = max(0, min(99, int(fraction * 100)))
        if not connection.in_atomic_block:
            ImportJob.objects.filter(pk=self.job_id).update(rows_processed=rows, progress=percent)
            return
        if self.side is None:
            own = connections[DEFAULT_DB_ALIAS]
            self.side = own.__class__(dict(own.settings_dict), alias=DEFAULT_DB_ALIAS)
        with self.side.cursor() as cursor:
            cursor.execute("UPDATE members_importjob SET rows_processed = %s, progress = %s WHERE id = %s",
                           [rows, percent, self.job_id])

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def _report_fields(report: Report) -> dict:
    counts = report.counts
    return {"count_new": counts["new"], "count_updated": counts["updated"], "count_unchanged": counts["unchanged"],
            "count_skipped": counts["skipped"], "count_invalid": counts["invalid"], "errors": report.errors,
            "warnings": report.warnings}


@transaction.atomic
def import_job_create(*, kind: str, upload, options: dict, staff_user: AbstractBaseUser | None,
                      language: str | None = None) -> ImportJob:
    """Store an uploaded file as a job waiting for its dry run."""
    if kind not in IMPORTERS:
        raise ImportFileError(detail=_("unknown kind of import"))
    if (upload.size or 0) > max_upload_bytes():
        raise ImportFileError(detail=_("the file is larger than %(size)s MB; split it into smaller files")
                              % {"size": max_upload_bytes() // (1024 * 1024)})
    job = ImportJob(kind=kind, file_name=upload.name[:255], file_size=upload.size or 0, options=options,
                    created_by=staff_user, language=(language or translation.get_language() or "de")[:8])
    job.file.save(upload.name, upload, save=False)
    job.save()
    return job


def _open_job_table(job: ImportJob, binary, *, encoding: str | None = None) -> Table:
    options = job.options or {}
    return open_table(binary, name=job.file_name, size=job.file_size, file_format=options.get("format", "auto"),
                      encoding=encoding or job.encoding or options.get("encoding", "auto"),
                      delimiter=job.delimiter or options.get("delimiter", "auto"))


# A step (the dry run, or the import after confirmation) started this often and never finished
# (its worker was killed: out of memory, a hard time limit, a crash) is not started again: the
# job fails with a message instead of taking down one worker after another.
MAX_ATTEMPTS = 2
_DRY_RUN_STEP = (ImportJob.Status.PENDING, ImportJob.Status.ANALYSING)
_IMPORT_STEP = (ImportJob.Status.IMPORTING,)


def import_job_analyse(*, job_id: int) -> ImportJob:
    """The dry run: read and check the whole file, store the report. Writes nothing else.

    It holds a session advisory lock while it runs, so the sweeper can tell a dry run whose
    worker died (still "analysing", nobody holds the lock) from one that is running, and a task
    queued again finds the lock taken (the dry run is running) or the job analysed (it is done).
    Running a dry run again is harmless: it writes only its report. Each start is counted: a
    dry run started MAX_ATTEMPTS times without finishing fails the job instead."""
    with _session_lock(DRY_RUN_LOCK, job_id) as locked:
        if not locked:
            return ImportJob.objects.get(pk=job_id)  # running in another process
        if not ImportJob.objects.filter(pk=job_id, status__in=_DRY_RUN_STEP, attempts__lt=MAX_ATTEMPTS).update(
                status=ImportJob.Status.ANALYSING, started_at=timezone.now(), finished_at=None, progress=0,
                rows_processed=0, attempts=F("attempts") + 1):
            job = ImportJob.objects.get(pk=job_id)
            if job.status in _DRY_RUN_STEP:
                return _give_up(job)  # started twice and never finished
            return job  # already analysed (a redelivered task) or discarded
        return _analyse(ImportJob.objects.get(pk=job_id))


def _analyse(job: ImportJob) -> ImportJob:
    """Whatever happens while reading the file, the job ends analysed or failed with a message."""
    progress = _ProgressWriter(job.pk, None)
    try:
        with translation.override(job.language):
            report, table = _dry_run(job, progress)
            # In the try: a report the database refuses must fail the job, not leave it "analysing".
            return _finish(job, status=ImportJob.Status.ANALYSED, report=report, rows_total=report.rows,
                           encoding=table.encoding, delimiter=table.delimiter,
                           dry_run={**report.counts, "rows": report.rows, "errors_total": report.errors_total,
                                    "columns": report.columns, "ignored_columns": report.ignored_columns})
    except (ImportFileError, ImportFailed) as error:
        return _fail(job, _DRY_RUN_STEP, str(error))
    except Exception as error:  # a time limit, memory, the database, a bug: anything but a kill
        logger.exception("dry run of import job %s failed", job.pk)
        return _fail(job, _DRY_RUN_STEP, _failure_message(job, error, dry_run=True))
    finally:
        progress.close()


def _failure_message(job: ImportJob, error: BaseException, *, dry_run: bool) -> str:
    with translation.override(job.language):
        if isinstance(error, SoftTimeLimitExceeded):
            minutes = {"minutes": max(1, import_soft_time_limit() // 60)}
            if dry_run:
                return _("The dry run took longer than its time limit (%(minutes)s minutes) and was stopped. "
                         "Split the file into smaller ones.") % minutes
            return _("The import took longer than its time limit (%(minutes)s minutes) and was stopped; nothing "
                     "was written. Split the file into smaller ones.") % minutes
        if isinstance(error, MemoryError):
            return _("The file needs more memory than the worker has; nothing was written. Split it into smaller "
                     "files.")
        if dry_run:
            return _("The file could not be read. Check its format or choose the encoding.")
        message = _("The import failed and nothing was written: %(error)s") % {"error": error}
        return message[:2000]


def _give_up(job: ImportJob) -> ImportJob:
    """A step that was started MAX_ATTEMPTS times and never finished: fail the job."""
    dry_run = job.status in _DRY_RUN_STEP
    with translation.override(job.language):
        if dry_run:
            message = _("The dry run was started %(count)s times and never finished: the file may be too large "
                        "or damaged for the worker. It is not tried again; check the file or split it, and upload "
                        "it again.") % {"count": job.attempts}
        else:
            message = _("The import was started %(count)s times and never finished; nothing was written. It is "
                        "not tried again; check the file or split it, and upload it again.") % {"count": job.attempts}
    logger.warning("import job %s: %s started %s times without finishing, marked failed", job.pk,
                   "dry run" if dry_run else "import", job.attempts)
    return _fail(job, _DRY_RUN_STEP if dry_run else _IMPORT_STEP, message)


def import_soft_time_limit() -> int:
    return getattr(settings, "LOYALTY_IMPORT_SOFT_TIME_LIMIT", 3600)


def _dry_run(job: ImportJob, progress: Progress) -> tuple[Report, Table]:
    chosen = (job.options or {}).get("encoding", "auto")
    with job.file.open("rb") as binary:
        encoding = None
        while True:
            try:
                table = _open_job_table(job, binary, encoding=encoding)
                report = import_table(table, kind=job.kind, write=False, label=job.file_name, options=job.options,
                                      progress=progress)
                return report, table
            except _EncodingFailed as failure:
                if chosen != "auto" or failure.encoding in ("cp1252", "utf-16"):
                    raise ImportFileError(
                        detail=_("line %(line)s is not valid %(encoding)s; choose another encoding")
                        % {"line": failure.line, "encoding": failure.encoding}) from None
                # The sample looked like UTF-8 but a later line is not: Windows-1252 it is.
                encoding = "cp1252"


@transaction.atomic
def import_job_confirm(*, job_id: int, staff_user: AbstractBaseUser | None, skip_invalid: bool = False) -> ImportJob:
    """Staff saw the dry run and want the import. Compare-and-set: a double click imports once."""
    job = ImportJob.objects.select_for_update().get(pk=job_id)
    if job.status != ImportJob.Status.ANALYSED:
        raise ImportFileError(detail=_("this file is not waiting for confirmation"))
    if job.count_invalid and not skip_invalid:
        raise ImportFileError(detail=_("the dry run found invalid rows: correct the file, or import only the "
                                       "valid rows"))
    job.status = ImportJob.Status.IMPORTING
    job.confirmed_by = staff_user
    job.confirmed_at = timezone.now()
    job.options = {**(job.options or {}), "skip_invalid": bool(skip_invalid)}
    job.progress = 0
    job.rows_processed = 0
    job.attempts = 0  # the import is a new step: its starts are counted afresh
    job.save(update_fields=["status", "confirmed_by", "confirmed_at", "options", "progress", "rows_processed",
                            "attempts"])
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """The import: the whole file in one transaction. Runs only for a confirmed job.

    The job becomes "done" in the same transaction as the rows: whatever stops the import (a
    bad row, a time limit, the database) leaves nothing written and the job failed with a message."""
    job = ImportJob.objects.get(pk=job_id)
    if job.status != ImportJob.Status.IMPORTING:
        return job
    if _job_is_running(job_id, key=IMPORT_LOCK):
        return job  # a redelivered task while the first run is still busy: let it finish
    if not ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.IMPORTING, attempts__lt=MAX_ATTEMPTS).update(
            started_at=timezone.now(), finished_at=None, attempts=F("attempts") + 1):
        job.refresh_from_db()
        return _give_up(job) if job.status == ImportJob.Status.IMPORTING else job
    job.refresh_from_db()
    progress = _ProgressWriter(job.pk, job.rows_total)
    try:
        with translation.override(job.language), job.file.open("rb") as binary, transaction.atomic():
            if not _lock_job(job.pk):
                return job  # another run took the lock since the check above
            report = import_table(_open_job_table(job, binary), kind=job.kind, write=True,
                                  skip_invalid=(job.options or {}).get("skip_invalid", False),
                                  staff_user=job.confirmed_by, label=job.file_name, options=job.options,
                                  progress=progress)
            job = _finish(job, status=ImportJob.Status.DONE, report=report, rows_total=report.rows)
    except (ImportFileError, ImportFailed) as error:
        return _fail(job, _IMPORT_STEP, str(error))
    except Exception as error:  # a time limit, memory, the database, a bug: the transaction is rolled back
        logger.exception("import job %s failed", job_id)
        return _fail(job, _IMPORT_STEP, _failure_message(job, error, dry_run=False))
    finally:
        progress.close()
    try:
        _delete_file(job)
    except Exception:  # the import is done; the retention job removes the file later
        logger.exception("could not delete the file of import job %s", job.pk)
    return job


def import_jobs_resume_stalled(*, confirmed_before_seconds: int = 120) -> list[int]:
    """Beat's sweeper for jobs whose work was lost: a worker killed in the middle (with a broker
    that does not redeliver, its task is gone) or a task the broker lost or never took (see
    core.tasks.enqueue).

    - Waiting for its dry run or "dry run running", and nobody holds the dry-run lock: queue
      the dry run again (it writes only its report).
    - "importing" with nothing written (a killed worker's transaction died with it), and nobody
      holds the import lock: queue the import again. A second run is harmless: the lock lets
      only one import at a time, and importing the same file again changes nothing.
    - Either of them already started MAX_ATTEMPTS times: mark it failed instead (a file that
      kills its worker would otherwise be queued again every few minutes, forever).

    A job whose task still waits in a long queue may get a second task: that one finds the lock
    taken or the job past that step, and does nothing."""
    from core.tasks import enqueue

    from .tasks import analyse_import, run_import

    cutoff = timezone.now() - timedelta(seconds=confirmed_before_seconds)
    resumed = []
    dry_runs = ImportJob.objects.filter(Q(status=ImportJob.Status.PENDING, created_at__lt=cutoff)
                                        | Q(status=ImportJob.Status.ANALYSING, started_at__lt=cutoff))
    stalled = [(job_id, DRY_RUN_LOCK, analyse_import)
               for job_id in dry_runs.order_by("pk").values_list("pk", flat=True)]
    stalled += [(job_id, IMPORT_LOCK, run_import) for job_id in ImportJob.objects.filter(
        status=ImportJob.Status.IMPORTING, confirmed_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)]
    for job_id, lock, task in stalled:
        if _job_is_running(job_id, key=lock):
            continue
        job = ImportJob.objects.get(pk=job_id)
        if job.attempts >= MAX_ATTEMPTS:
            _give_up(job)  # it crashed its worker twice: a third worker would fare no better
            continue
        enqueue(task, job_id)
        resumed.append(job_id)
    return resumed


# PostgreSQL advisory lock keys (key, job id): the import holds IMPORT_LOCK for its transaction,
# the dry run DRY_RUN_LOCK for its session. A killed worker's locks go with its connection.
IMPORT_LOCK = 7007
DRY_RUN_LOCK = 7008


def _job_is_running(job_id: int, *, key: int = IMPORT_LOCK) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, job_id])
        free = bool(cursor.fetchone()[0])
        if free:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, job_id])
    return not free


def _lock_job(job_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [IMPORT_LOCK, job_id])
        return bool(cursor.fetchone()[0])


@contextmanager
def _session_lock(key: int, job_id: int):
    """Yield whether this connection got the lock; release it at the end."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, job_id])
        locked = bool(cursor.fetchone()[0])
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, job_id])


def _finish(job: ImportJob, *, status: str, report: Report | None = None, message: str = "", **fields) -> ImportJob:
    values = {"status": status, "finished_at": timezone.now(), "message": message, **fields}
    if report is not None:
        values.update(_report_fields(report), rows_processed=report.rows, progress=100)
    ImportJob.objects.filter(pk=job.pk).update(**values)
    job.refresh_from_db()
    return job


def _fail(job: ImportJob, step: tuple[str, ...], message: str) -> ImportJob:
    """The job failed in `step`: compare-and-set, so a late error (a time limit after the import
    committed) cannot turn a finished job into a failed one. The connection may be the reason
    for the failure, so a second try gets a fresh one."""
    values = {"status": ImportJob.Status.FAILED, "finished_at": timezone.now(), "message": message[:5000]}
    try:
        ImportJob.objects.filter(pk=job.pk, status__in=step).update(**values)
    except Exception:
        logger.exception("could not mark import job %s failed; trying a new connection", job.pk)
        if connection.in_atomic_block:
            raise
        connection.close()
        ImportJob.objects.filter(pk=job.pk, status__in=step).update(**values)
    job.refresh_from_db()
    return job


@transaction.atomic
def import_job_discard(*, job_id: int, staff_user: AbstractBaseUser | None = None) -> ImportJob:
    """Staff don't want this file: the job stays as a record, the file (personal data) goes."""
    job = ImportJob.objects.select_for_update().get(pk=job_id)
    if job.status not in (ImportJob.Status.ANALYSED, ImportJob.Status.FAILED, ImportJob.Status.PENDING):
        raise ImportFileError(detail=_("a running or finished import cannot be discarded"))
    job.status = ImportJob.Status.DISCARDED
    job.finished_at = job.finished_at or timezone.now()
    job.save(update_fields=["status", "finished_at"])
    transaction.on_commit(lambda: _delete_file(job))
    return job


def _delete_file(job: ImportJob) -> None:
    if job.file:
        job.file.delete(save=False)
        ImportJob.objects.filter(pk=job.pk).update(file="")


# An Excel file is small in the request only if its XML is too: a 2 MB file may unpack to 2 GB.
XLSX_SYNC_INFLATION = 10


def _runs_in_request(job: ImportJob) -> bool:
    limit = sync_limit_bytes()
    if job.file_size > limit:
        return False
    if not job.file or (job.options or {}).get("format") == "csv":
        return True
    from .xlsx import inflated_size

    with job.file.open("rb") as binary:
        if binary.read(4) != b"PK\x03\x04":
            return True
        return inflated_size(binary) <= XLSX_SYNC_INFLATION * limit


def import_job_start_dry_run(job: ImportJob) -> ImportJob:
    """Small files in the request, large ones on a worker (after the job row is committed)."""
    if _runs_in_request(job):
        return import_job_analyse(job_id=job.pk)
    from core.tasks import enqueue

    from .tasks import analyse_import

    enqueue(analyse_import, job.pk)
    return job


def import_job_start(job: ImportJob) -> ImportJob:
    if _runs_in_request(job):
        return import_job_run(job_id=job.pk)
    from core.tasks import enqueue

    from .tasks import run_import

    enqueue(run_import, job.pk)
    return job
