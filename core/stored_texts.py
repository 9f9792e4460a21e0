"""System texts stored as a key with parameters and translated when shown.

Why: a text translated when it is written is in the writer's language. A ledger entry booked
while a German console user (or a job under German) was active said "Einkauf R-1" in an English
member's portal, API answers, data export and e-mails. So a system text is stored as a key
("purchase") and its parameters ({"reference": "R-1"}), and each reader renders it in its own
language: the request's for pages and API answers, the member's for mails.

- Writers: `stored_text("purchase", reference="R-1")`; a name that has a German and an English
  version is passed as both, `stored_text("voucher", reward=both_languages(reward, "name"))`.
- Readers: `shown_text(code, params, stored)`.
- Free text typed by staff (an adjustment's note) has no key: it is stored and shown as typed.
- Rows written before the keys existed carry only the text, in whatever language was active.
  The ledger is append-only (a trigger refuses UPDATE, see rewards migration 0002/0009), so
  they cannot be migrated: `shown_text` recognises the known texts in German and English when
  it shows them and translates them; any other text is shown as stored.

The module sits in core so that every app (members' imports too) can store its texts; the
catalogue below is the single list of keys.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

# key -> msgid (translated by the reader). Keys are stored in the database: never rename one.
TEXTS: dict[str, str] = {
    "purchase": gettext_noop("Purchase %(reference)s"),
    "return": gettext_noop("Return %(reference)s"),
    "points-expired": gettext_noop("Points expired"),
    "voucher": gettext_noop("Voucher: %(reward)s"),
    "voucher-cancelled": gettext_noop("Voucher cancelled: %(reward)s"),
    "voucher-expired": gettext_noop("Voucher expired: %(reward)s"),
    "donation": gettext_noop("Donation: %(cause)s"),
    "donation-cancelled": gettext_noop("Donation cancelled: %(cause)s"),
    "referral-bonus": gettext_noop("Referral bonus: %(program)s"),
    "survey-thanks": gettext_noop("Thank you for your feedback: %(survey)s"),
    "complaint-goodwill": gettext_noop("Goodwill for complaint %(number)s"),
    "challenge-completed": gettext_noop("Challenge completed: %(name)s"),
    "campaign-bonus": gettext_noop("Campaign bonus: %(name)s"),
    "raffle-entry": gettext_noop("Raffle entry: %(name)s"),
    "member-merged": gettext_noop("Merged %(duplicate)s into %(survivor)s"),
    "member-erased": gettext_noop("Points forfeited: the account was erased at the member's request"),
    "opening-balance": gettext_noop("Opening balance (import)"),
}

LANGUAGES = ("de", "en")


@dataclass(frozen=True)
class StoredText:
    """A system text as it is stored: its key and its parameters (JSON: strings, numbers, or
    {"de": …, "en": …} for a name in both languages)."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in TEXTS:
            raise ValueError(f"unknown stored text {self.code!r}: add it to core.stored_texts.TEXTS")

    def __hash__(self) -> int:
        """A dict of params is not hashable; events group by their reason. Computed once per
        object and kept (outside the fields): an import groups a hundred thousand events by the
        one reason object of its chunk, and the JSON of the params cost more than the grouping."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = self.__dict__["_hash"] = hash((self.code, json.dumps(self.params, sort_keys=True, default=str)))
        return cached

    def __str__(self) -> str:
        """The text in the active language (for a log line or a message right away)."""
        return shown_text(self.code, self.params)

    def in_language(self, language: str) -> str:
        with translation.override(language):
            return str(self)


def stored_text(code: str, **params: Any) -> StoredText:
    """The one way a writer stores a system text: `stored_text("purchase", reference="R-1")`."""
    return StoredText(code, params)


def both_languages(obj: Any, attribute: str) -> dict[str, str]:
    """A name's German and English version (`name_de`, `name_en`; English falls back to German),
    so the reader picks its own."""
    german = getattr(obj, f"{attribute}_de")
    return {"de": german, "en": getattr(obj, f"{attribute}_en", "") or german}


def _in_active_language(value: Any) -> Any:
    if isinstance(value, dict):
        language = (translation.get_language() or settings.LANGUAGE_CODE)[:2]
        return value.get(language) or value.get("de") or next(iter(value.values()), "")
    return value


def shown_text(code: str, params: dict[str, Any] | None = None, stored: str = "") -> str:
    """The one way a reader shows a stored text, in the active language. `stored` is the text
    column: shown as stored when there is no key (staff's free text) and the text is none of
    the known ones."""
    msgid = TEXTS.get(code or "")
    if msgid is None:
        return _recognised(stored)
    try:
        return gettext(msgid) % {name: _in_active_language(value) for name, value in (params or {}).items()}
    except (KeyError, TypeError, ValueError):  # a translation whose placeholders don't fit: the original
        return msgid % {name: _in_active_language(value) for name, value in (params or {}).items()}


# --- Rows without a key: recognise the known texts in either language -----------------------

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=256)
def _pattern(template: str) -> re.Pattern[str]:
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[last:match.start()]))
        parts.append(f"(?P<{match.group(1)}>.+?)")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts), re.DOTALL)


def _templates(language: str) -> list[tuple[str, str]]:
    """(code, the template in `language`), the longest fixed text first: "Voucher cancelled: X"
    must not be read as a voucher named "cancelled: X"."""
    with translation.override(language):
        templates = [(code, gettext(msgid)) for code, msgid in TEXTS.items()]
    return sorted(templates, key=lambda item: -len(_PLACEHOLDER.sub("", item[1])))


def recognise(stored: str) -> StoredText | None:
    """The key and parameters of a known text written in German or English, else None."""
    if not stored:
        return None
    for language in LANGUAGES:
        for code, template in _templates(language):
            if match := _pattern(template).fullmatch(stored):
                return StoredText(code, match.groupdict())
    return None


def _recognised(stored: str) -> str:
    known = recognise(stored)
    return stored if known is None else shown_text(known.code, known.params)


def text_columns(text: str | StoredText, *, max_length: int = 255) -> tuple[str, str, dict[str, Any]]:
    """(text, key, parameters) to store for a writer's text: a system text keeps its key and
    its parameters, and its text in the programme's language for readers of the raw table; a
    free text is stored as it is, without a key."""
    if isinstance(text, StoredText):
        return text.in_language(settings.LANGUAGE_CODE)[:max_length], text.code, text.params
    return text[:max_length], "", {}
