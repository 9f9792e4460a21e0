"""Numbers and dates on the console's figures (dashboard, campaign results) in the active
language: 3.497,94 and 04.12.2026 in German, 3,497.94 and 4 Dec 2026 in English.

Django's localisation does the numbers (number_format with grouping forced, so the setting
USE_THOUSAND_SEPARATOR, which would also group ids and years everywhere else, stays off). The
dates follow the portal's member dates: the en locale's SHORT_DATE_FORMAT (12/04/2026) reads as
12 April to most of our staff.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.utils import dateformat
from django.utils.formats import number_format
from django.utils.translation import get_language

_DATE_FORMATS = {"de": "d.m.Y"}
_MONTH_FORMATS = {"de": "m.Y"}
_DEFAULT_DATE_FORMAT, _DEFAULT_MONTH_FORMAT = "j M Y", "M Y"


def _language() -> str:
    return (get_language() or "de").split("-")[0]


def figure(value, decimals: int | None = 0) -> str:
    """A number grouped by thousands with the active language's separators; '–' for none."""
    if value is None or value == "":
        return "–"
    if decimals is not None:
        value = round(Decimal(str(value)), decimals)
    return number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)


def money(value) -> str:
    return figure(value, 2)


def percent(share, decimals: int = 1) -> str:
    """A share (0.125) as a percentage (12,5 %)."""
    return "–" if share is None else f"{figure(share * 100, decimals)} %"


def day(value: date | datetime | str) -> str:
    value = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    return dateformat.format(value, _DATE_FORMATS.get(_language(), _DEFAULT_DATE_FORMAT))


def day_and_time(value: datetime) -> str:
    return f"{day(value)} {dateformat.format(value, 'H:i')}"


def month(value: date | str) -> str:
    value = date.fromisoformat(value[:7] + "-01") if isinstance(value, str) else value
    return dateformat.format(value, _MONTH_FORMATS.get(_language(), _DEFAULT_MONTH_FORMAT))
