"""The customer-list importer (kind "members"), registered with transfers in MembersConfig.ready().

Why not django-import-export row by row: it saves one model per row (about 600 rows/s) and
would write balances without the ledger. This importer streams the file in chunks
(transfers.reading), validates in plain Python, looks up each chunk's customer numbers and
e-mails with one query each (one array parameter, tuples back), and writes each chunk with a
constant number of set-based statements (`core.db`: COPY for new members, tier history,
tags and consents, one UPDATE for the members that change). Opening balances are ledger
entries: new members are inserted with their balance and `rewards.ledger.points_open_bulk` books
the entries (and checks they add up), existing members go through
`rewards.ledger.points_credit_bulk` (lock, entries, balances). The resources in
`members/resources.py` describe the same columns for exports.

Rules kept everywhere: duplicates are matched on customer number, then e-mail (case-insensitive);
a member repeated within the file is reported and imported once; opening balances are entries
with source "import" and reference "import-opening:<customer number>", so importing the same file
twice changes nothing; nobody gets marketing consent unless the file proves it (yes + date +
source), and that becomes a consent record with source "import".
"""

from __future__ import annotations

import functools
import re
import secrets
import struct
import uuid
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import dateparse, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core import db
from core.events import prepared, publish
from core.stored_texts import stored_text
from transfers.cells import (
    memoized,
    normalize_heading,
    parse_bool,
    parse_country,
    parse_date,
    parse_datetime,
    parse_points,
    parsed_value,
    text_value,
)
from transfers.importers import BaseImporter, Column
from transfers.models import ImportJob

from .events import MemberEnrolled, OpeningBalanceImported
from .models import ConsentRecord, Member, Tag, Tier, TierHistory, luhn_check_digit

OPENING_SOURCE = "import"

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
# Postal codes by country, where the form is simple; another country's codes are taken as they are.
_FOUR, _FIVE = gettext_lazy("4 digits"), gettext_lazy("5 digits")
_POSTAL_CODES = {country: (re.compile(pattern), form) for country, pattern, form in (
    ("DE", r"\d{5}", _FIVE), ("AT", r"\d{4}", _FOUR), ("CH", r"\d{4}", _FOUR), ("LI", r"\d{4}", _FOUR),
    ("LU", r"(?:L-)?\d{4}", _FOUR), ("BE", r"\d{4}", _FOUR), ("DK", r"\d{4}", _FOUR), ("FR", r"\d{5}", _FIVE),
    ("IT", r"\d{5}", _FIVE), ("ES", r"\d{5}", _FIVE), ("CZ", r"\d{3} ?\d{2}", _FIVE),
    ("NL", r"\d{4} ?[A-Za-z]{2}", gettext_lazy("4 digits and 2 letters")), ("PL", r"\d{2}-\d{3}", "NN-NNN"),
)}
_PHONE = re.compile(r"[0-9+()/.\- ]+")
_FOUR_DIGITS = re.compile(r"(?:\D*\d){4}")  # a phone number has at least four digits


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


CONSENT_FIELDS = ("member_id", "purpose", "granted", "source", "text_version", "confirmed_at", "created_at",
                  "created_by_id")
ENROLMENT_FIELDS = ("member_id", "to_tier_id", "cause", "reason", "created_by_id", "created_at")  # TierHistory


@dataclass(slots=True)
class _Writes:
    """One chunk's writes as the main thread prepares them for the writer's thread: rows
    formatted for COPY (core.db.copy_data) and events built."""

    new: list[_MemberRow]
    updated: list[_MemberRow]
    members: db.CopyData | None = None
    history: db.CopyData | None = None  # the new members' tier history
    enrolled: list[MemberEnrolled] = field(default_factory=list)
    new_consents: db.CopyData | None = None
    new_openings: Callable[[], None] | None = None  # the opening balances, prepared (core.events.prepared)
    updated_consents: db.CopyData | None = None
    updated_openings: Callable[[], None] | None = None


def _random_below(bound: int, count: int) -> list[int]:
    """`count` random numbers below `bound` from one call to the system's generator (what
    `secrets.randbelow` reads once per number). Eight bytes each: the bias of the remainder is
    below bound / 2**64, a 200-millionth for card numbers."""
    return [word % bound for word in struct.unpack(f"<{count}Q", secrets.token_bytes(8 * count))]


def _random_uuids(count: int) -> list[uuid.UUID]:
    """`count` version-4 UUIDs (what `uuid.uuid4` makes) from one call to the system's generator
    instead of one per member."""
    pool = secrets.token_bytes(16 * count)
    return [uuid.UUID(bytes=pool[16 * n:16 * n + 16], version=4) for n in range(count)]


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
        # The customer-since date of the shop's own system is the join date: an imported customer
        # is not a new sign-up (the dashboard counts sign-ups by join date).
        Column("joined_at", gettext_lazy("join date"), ("Beitrittsdatum", "Beitritt", "Mitglied seit",
                                                         "Anmeldedatum", "Eintrittsdatum", "Kunde seit",
                                                         "Kundin seit", "Kunde seit Datum", "Kundenbeziehung seit",
                                                         "Join date", "Joined", "Joined at", "Member since",
                                                         "Customer since", "Client since")),
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
    # Marketing imports customer lists and opt-ins; points are booked only by staff who may adjust them.
    column_permissions = {"opening_balance": "members.adjust_points"}

    def prepare(self) -> None:
        self.first_line_of_number: dict[str, int] = {}
        self.first_line_of_email: dict[str, int] = {}
        self.generated_numbers: set[str] = set()
        self.unwritten_cards: set[str] = set()  # card numbers of the chunk the writer still writes
        self.card_pool: list[str] = []  # card numbers drawn for the next new members
        self.pending: Callable[[], None] | None = None  # the last chunk's writes, not yet handed over
        self.first_line_of_member: dict[int, int] = {}  # members of the database this file matched
        self.tiers: dict[str, Tier] = {}
        # Points tiers only: a paid or invitation tier is held through a membership (rewards), and
        # a file naming one gets "unknown tier" rather than a tier nobody paid for or was invited to.
        for tier in Tier.objects.points_based():
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
        data["customer_number"] = text_value(values, "customer_number", 40, errors)
        email = text_value(values, "email", 254, errors)
        if email:
            try:
                validate_email(email)
            except ValidationError:
                errors.append(("email", _("“%(value)s” is not a valid e-mail address") % {"value": email}))
        data["email"] = email
        if not data["customer_number"] and not email and not errors:
            errors.append(("", _("a customer number or an e-mail is needed to recognise the member again")))
        salutation = text_value(values, "salutation", 20, errors)
        if salutation:
            key = normalize_heading(salutation)
            if key not in _SALUTATIONS:
                errors.append(("salutation", _("unknown salutation “%(value)s” (Frau, Herr, divers)")
                               % {"value": salutation}))
            data["salutation"] = _SALUTATIONS.get(key, "")
        for name, length in (("first_name", 100), ("last_name", 100), ("street", 200), ("city", 100)):
            if text := text_value(values, name, length, errors):
                data[name] = text
        if phone := text_value(values, "phone", 40, errors):
            if not _PHONE.fullmatch(phone) or not _FOUR_DIGITS.match(phone):
                errors.append(("phone", _("“%(value)s” is not a phone number") % {"value": phone}))
            data["phone"] = phone
        birth_date = parsed_value(values, "birth_date", self.parse_date, errors)
        if birth_date is not None:
            if birth_date > self.today:
                errors.append(("birth_date", _("the birth date %(date)s is in the future")
                               % {"date": birth_date.strftime("%d.%m.%Y")}))
            elif birth_date.year < 1900:
                errors.append(("birth_date", _("the birth date %(date)s is too long ago")
                               % {"date": birth_date.strftime("%d.%m.%Y")}))
            data["birth_date"] = birth_date
        country = parsed_value(values, "country", self.parse_country, errors)
        if country:
            data["country"] = country
        if postal := text_value(values, "postal_code", 20, errors):
            if (country or "DE") == "DE" and postal.isdigit() and len(postal) == 4:
                postal = postal.zfill(5)  # Excel drops the leading zero of 01067 Dresden
            data["postal_code"] = postal
            form = _POSTAL_CODES.get(country or "DE")
            if form is not None and not form[0].fullmatch(postal):
                # A warning, not an invalid row: the customer is real and the address only
                # needs a look (a foreign address with the country left out, a typo).
                data["postal_warning"] = _("“%(value)s” does not look like a postal code of %(country)s "
                                           "(%(form)s): imported, please check the address") % {
                    "value": postal, "country": country or "DE", "form": form[1]}
        if language := text_value(values, "language", 20, errors):
            code = _LANGUAGES.get(normalize_heading(language))
            if code is None:
                errors.append(("language", _("unknown language “%(value)s” (de or en)") % {"value": language}))
            data["language"] = code
        joined = parsed_value(values, "joined_at", self.parse_datetime, errors)
        if joined is not None:
            if joined.date() > self.today:
                errors.append(("joined_at", _("the join date is in the future")))
            data["joined_at"] = joined
        if tags := text_value(values, "tags", 1000, errors):
            names = [name.strip() for name in re.split(r"[,;|]", tags) if name.strip()]
            if any(len(name) > 50 for name in names):
                errors.append(("tags", _("a tag has at most 50 characters")))
            data["tags"] = list(dict.fromkeys(names))
        if tier_name := text_value(values, "tier", 80, errors):
            tier = self.tiers.get(normalize_heading(tier_name))
            if tier is None:
                errors.append(("tier", _("unknown tier “%(value)s”") % {"value": tier_name}))
            data["tier"] = tier
        opening = parsed_value(values, "opening_balance", self.parse_points, errors)
        if opening is not None:
            if opening < 0:
                errors.append(("opening_balance", _("an opening balance cannot be negative")))
            elif opening > 10_000_000:
                errors.append(("opening_balance", _("an opening balance above 10,000,000 points is not plausible")))
            data["opening_balance"] = opening
        self._clean_consent(values, data, errors)
        return data, errors

    def _clean_consent(self, values: dict, data: dict, errors: list) -> None:
        consent = parsed_value(values, "consent_email", parse_bool, errors)
        when = parsed_value(values, "consent_date", self.parse_datetime, errors)
        source = text_value(values, "consent_source", 200, errors)
        if when is not None and when.date() > self.today:
            errors.append(("consent_date", _("the consent date is in the future")))
        if consent:
            if when is None or not source:
                data["consent_unproven"] = True  # reported as a note, never recorded
            else:
                data["consent"] = (when, source)

    # Cleaning needs neither the database nor the report: the next chunk is read and cleaned in
    # a thread while this one is written (BaseImporter.clean_ahead).
    clean_ahead = True
    # ... and written in another while the next one is matched and prepared (`_match`).
    write_behind = True

    def clean_chunk(self, rows: list[tuple[int, dict]]) -> list[tuple[int, dict, list[tuple[str, str]]]]:
        clean = self.clean
        return [(line, *clean(values)) for line, values in rows]

    def process(self, rows: list[tuple[int, dict, list[tuple[str, str]]]]) -> None:
        candidates: list[_MemberRow] = []
        for line, data, errors in rows:
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
            if postal_warning := data.pop("postal_warning", None):
                self.report.warning(line, self.column_name("postal_code"), postal_warning)
            candidates.append(_MemberRow(line=line, data=data))
        if candidates:
            self._match(candidates)

    def _match(self, candidates: list[_MemberRow]) -> None:
        """Match the chunk, then write it; with `self.writer` (write mode), one chunk behind.

        The chunk's queries (lookups, keys for new members) run first, while the connection is
        free; then the previous chunk's writes go to the writer's thread, and this chunk is
        compared and prepared meanwhile. So the lookups don't see the previous chunk's new
        members: what this import has created is known in memory instead (the file's customer
        numbers and e-mails, generated numbers, the cards still being written)."""
        if self.write and not self.card_pool:
            # Drawn before waiting for the writer: the connection isn't needed for it.
            self.card_pool = _random_card_numbers(len(candidates))
        if self.writer is not None:
            self.writer.wait()  # the connection is this thread's again
        by_number, by_email = self._known_members(candidates)

        matched: list[_MemberRow] = []
        new: list[_MemberRow] = []
        for row in candidates:
            data = row.data
            number, email_key = data["customer_number"], data["email"].lower()
            member = by_number.get(number) if number else None
            owner = by_email.get(email_key) if email_key else None
            if number and number in self.generated_numbers:
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
        lookups = self._compare_lookups(matched) if matched else None
        keys = self._new_keys(new) if self.write and new else None
        self._write_pending()  # the previous chunk, written while this one is compared and prepared
        if lookups is not None:
            self._compare(matched, *lookups)
        self.counted("new", len(new))
        if self.write:
            updated = [row for row in matched if row.member is not None and self._has_changes(row)]
            self.pending = functools.partial(self._write_chunk, self._prepared_writes(new, keys, updated))

    def _write_pending(self) -> None:
        if self.pending is None:
            return
        job, self.pending = self.pending, None
        if self.writer is not None:
            self.writer.submit(job)
        else:
            job()

    def finish(self) -> None:
        self._write_pending()

    def _prepared_writes(self, new: list[_MemberRow], keys: tuple | None, updated: list[_MemberRow]) -> _Writes:
        """Everything the writes of a chunk need that takes no database: the writer's thread
        then mostly waits for PostgreSQL, and the rows and events are built meanwhile here."""
        writes = _Writes(new=new, updated=updated)
        if new and keys is not None:
            members, history = self._new_members(new, *keys)
            writes.members = db.copy_data(Member, NEW_MEMBER_FIELDS, members, now=self.now)
            staff_id = self.staff_user.pk if self.staff_user is not None else None
            writes.history = db.copy_data(TierHistory, ENROLMENT_FIELDS, [
                (pk, tier_id, TierHistory.Cause.ENROLMENT, self.reason, staff_id, self.now)
                for pk, tier_id in history], now=self.now)
            writes.enrolled = [MemberEnrolled(member_id=member[0], via="import", customer_number=member[2],
                                              card_number=member[3]) for member in members]
            writes.new_consents, writes.new_openings = self._consents_and_openings(new, new=True)
        if updated:
            writes.updated_consents, writes.updated_openings = self._consents_and_openings(updated, new=False)
        return writes

    def _write_chunk(self, writes: _Writes) -> None:
        """A chunk's writes (in the writer's thread): new members, then the changed ones."""
        if writes.new:
            self._create(writes)
        self._update(writes)

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

    def _compare_lookups(self, rows: list[_MemberRow]) -> tuple[dict, dict, set]:
        """What `_compare` needs of the database: the matched members' tags, opening balances
        booked by an import before, and consents recorded by one."""
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
        return tags_of, booked, consented

    def _compare(self, rows: list[_MemberRow], tags_of: dict[int, set[int]], booked: dict[str, int],
                 consented: set[tuple[int, datetime]]) -> None:
        """What an import would change on members that exist: fields, tags, tier, credit, consent."""
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
                        avoid: tuple[Container[str], ...] = ()) -> list[str]:
        """Random numbers nobody has (`make(n)` draws n): checked against the database (which
        holds this import's chunks but the one still being written) with one query per round,
        and against each of `avoid`."""
        numbers: set[str] = set()
        while len(numbers) < count:
            batch = set(make(count - len(numbers))) - numbers
            for taken in avoid:
                batch = {number for number in batch if number not in taken}
            taken = {found for (found,) in db.select_in(
                f"SELECT {column} FROM members_member WHERE {column} {{in}}", list(batch))}  # noqa: S608 (constants)
            numbers |= batch - taken
        return list(numbers)

    def _new_keys(self, rows: list[_MemberRow]) -> tuple[list[int], list[str], list[str]]:
        """Primary keys, generated customer numbers and card numbers for the chunk's new members
        (the database part of preparing them)."""
        missing = sum(1 for row in rows if not row.data["customer_number"])
        # Generated customer numbers also avoid every number the file used so far (and those
        # generated before: the last chunk's aren't in the database yet); they are remembered,
        # so a later row carrying one of them is refused, not taken for this member.
        fresh_numbers = self._unique_numbers(missing, _random_customer_numbers, "customer_number",
                                             avoid=(self.first_line_of_number, self.generated_numbers))
        self.generated_numbers.update(fresh_numbers)
        cards = self._unique_numbers(len(rows), self._card_candidates, "card_number", avoid=(self.unwritten_cards,))
        self.unwritten_cards = set(cards)  # until the next chunk's lookups: then they are written
        return db.next_ids(Member, len(rows)), fresh_numbers, cards

    def _card_candidates(self, count: int) -> list[str]:
        """`count` random card numbers, drawn ahead (`card_pool`) as far as there are."""
        drawn, self.card_pool = self.card_pool[:count], self.card_pool[count:]
        return drawn + _random_card_numbers(count - len(drawn)) if len(drawn) < count else drawn

    def _new_members(self, rows: list[_MemberRow], ids: list[int], numbers: list[str],
                     cards: list[str]) -> tuple[list[tuple], list[tuple[int, int]]]:
        """The new members' rows (NEW_MEMBER_FIELDS) and tier history (member, tier); each row
        learns its member."""
        generated, card = iter(numbers), iter(cards)
        entry_tier_id = self.entry_tier.pk if self.entry_tier is not None else None
        members, history = [], []
        public_ids = _random_uuids(len(rows))
        for row, pk, public_id in zip(rows, ids, public_ids, strict=True):
            data = row.data
            tier = data.get("tier")
            tier_id = tier.pk if tier is not None else entry_tier_id
            number = data["customer_number"] or next(generated)
            members.append((pk, public_id, number, next(card), data["email"], data.get("salutation") or "",
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
        return members, history

    def _create(self, writes: _Writes) -> None:
        db.insert_copy_data(writes.members)
        db.insert_copy_data(writes.history)
        # Enrolled first, then their opening balances and consents (announced in that order).
        publish(writes.enrolled)
        self._write_extras(writes.new, writes.new_consents, writes.new_openings, new=True)

    def _update(self, writes: _Writes) -> None:
        rows = writes.updated
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
        self._write_extras(rows, writes.updated_consents, writes.updated_openings, new=False)

    def _consents_and_openings(self, rows: list[_MemberRow], *, new: bool) -> tuple[db.CopyData, Callable[[], None]]:
        """The consent records (formatted for COPY) and the opening-balance events of these rows,
        prepared: what the ledger can work out without the database is done here, in the main
        thread, and the writer's thread only books."""
        staff_id = self.staff_user.pk if self.staff_user is not None else None
        # Dated when the member agreed: a withdrawal recorded after that date stays the latest
        # record (and so the member's choice), an older one is superseded, as it should be.
        consents = db.copy_data(ConsentRecord, CONSENT_FIELDS, [
            (row.member.pk, ConsentRecord.Purpose.EMAIL, True, ConsentRecord.Source.IMPORT, row.consent[1][:40],
             row.consent[0], row.consent[0], staff_id) for row in rows if row.consent], now=self.now)
        # The ledger (rewards) books the opening balances: members announces them. The reason is
        # stored as a key and translated when shown (core.stored_texts); one object per chunk.
        reason = stored_text("opening-balance")
        openings = [OpeningBalanceImported(
            member_id=row.member.pk, points=row.opening, reference=f"import-opening:{row.member.customer_number}",
            source=OPENING_SOURCE, new_member=new, reason=reason, staff_user_id=staff_id)
            for row in rows if row.opening]
        return consents, prepared(openings)

    def _write_extras(self, rows: list[_MemberRow], consents: db.CopyData | None,
                      openings: Callable[[], None] | None, *, new: bool) -> None:
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
        db.insert_copy_data(consents)
        if openings is not None:
            openings()


# --- Historical purchases ------------------------------------------------------------------
