"""Field validators shared by the models: plausible dates and bounded texts.

A date far in the past or future is a typing error (the year 20255, a birth year 0198), and
the year 9999 is one step from an overflow in every date computation after it. The models
carry these validators, so the console, the portal and the partner API (ModelSerializer)
refuse the same values with the same message.
"""

from __future__ import annotations

from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

# Programme dates: validity windows, send times, deadlines, key expiries.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)
EARLIEST_BIRTH_DATE = date(1900, 1, 1)

# Free texts without a column limit (descriptions, terms, conditions): a bound on what a form takes.
LONG_TEXT_MAX = 4000


def _day(value) -> date:
    # Not converted to local time: near the year 9999 that conversion itself overflows, and a
    # day's difference at the limits does not matter.
    return value.date() if isinstance(value, datetime) else value


def _out_of_range(earliest: date, latest: date) -> ValidationError:
    return ValidationError(_("Please enter a date between %(earliest)s and %(latest)s."), code="date_out_of_range",
                           params={"earliest": date_format(earliest, "SHORT_DATE_FORMAT"),
                                   "latest": date_format(latest, "SHORT_DATE_FORMAT")})


def validate_programme_date(value) -> None:
    """A date or time of the programme: between 2000 and 2100."""
    if value is not None and not EARLIEST_DATE <= _day(value) <= LATEST_DATE:
        raise _out_of_range(EARLIEST_DATE, LATEST_DATE)


def validate_birth_date(value) -> None:
    """A birth date: not in the future, not before 1900."""
    if value is None:
        return
    if value > timezone.localdate():
        raise ValidationError(_("The birth date lies in the future."), code="birth_date_in_future")
    if value < EARLIEST_BIRTH_DATE:
        raise _out_of_range(EARLIEST_BIRTH_DATE, timezone.localdate())


class MaximumLengthPasswordValidator:
    """AUTH_PASSWORD_VALIDATORS: refuse absurdly long passwords (a megabyte typed into the sign-up
    form). Long passphrases stay possible."""

    def __init__(self, max_length: int = 256):
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(_("This password is too long: at most %(max_length)d characters."),
                                  code="password_too_long", params={"max_length": self.max_length})

    def get_help_text(self) -> str:
        return _("Your password can have at most %(max_length)d characters.") % {"max_length": self.max_length}
