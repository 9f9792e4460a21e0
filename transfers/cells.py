"""Values as people write them: dates, numbers, yes/no, countries, in German and English."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _


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
def parse_country(value: Any) -> str:
    text = cell_text(value)
    code = text.upper()
    if code in ISO_COUNTRIES:
        return code
    if found := _COUNTRY_NAMES.get(normalize_heading(text)):
        return found
    raise CellError(_("unknown country “%(value)s” (use the ISO code, e.g. DE, AT, CH)") % {"value": text})


def text_value(values: dict, name: str, max_length: int, errors: list) -> str:
    value = values.get(name)
    if value is None or value == "":
        return ""
    text = value.strip() if type(value) is str else cell_text(value)  # CSV cells: no call
    if len(text) > max_length:
        errors.append((name, _("at most %(count)s characters") % {"count": max_length}))
    return text


def parsed_value(values: dict, name: str, parser: Callable[[Any], Any], errors: list) -> Any:
    value = values.get(name)
    if value is None or value == "":
        return None
    try:
        return parser(value)
    except CellError as error:
        errors.append((name, str(error)))
        return None
