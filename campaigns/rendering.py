"""Message texts: Django template syntax, rendered in a sandbox.

Marketing staff write the texts in the admin, so the engine they get is cut down:
- only harmless tags (if, with, firstof, now, comment, …): no `load`, `include`, `extends`,
  `debug`, and no loops (a loop nest over a string is a cheap way to render gigabytes);
- only simple filters, none that pad to a given width (`center:"100000000"`);
- no template loaders, so nothing can be read from disk;
- a context of plain values (strings, numbers, dates) built here, never model instances, so a
  template can't follow a relation or call a method that reaches the database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from .errors import InvalidTemplate

ALLOWED_TAGS = ("if", "with", "firstof", "now", "spaceless", "comment", "filter", "templatetag", "verbatim",
                "autoescape")
ALLOWED_FILTERS = ("default", "default_if_none", "upper", "lower", "title", "capfirst", "date", "time", "yesno",
                   "pluralize", "truncatechars", "truncatewords", "cut", "add", "length", "escape", "striptags",
                   "linebreaksbr", "first", "last", "safe", "urlencode")

MAX_TEMPLATE_LENGTH = 10_000


@functools.cache
def sandbox_engine(*, autoescape: bool = False) -> Engine:
    library = Library()
    for name in ALLOWED_TAGS:
        library.tags[name] = defaulttags.register.tags[name]
    for name in ALLOWED_FILTERS:
        library.filters[name] = defaultfilters.register.filters[name]
    engine = Engine(loaders=[], libraries={}, autoescape=autoescape)
    engine.template_builtins = [library]  # replaces Django's default tags, filters and loader tags
    engine.template_libraries = {}
    return engine


def template_validate(text: str) -> None:
    """Raise InvalidTemplate if `text` does not compile in the sandbox."""
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise InvalidTemplate(detail=_("at most %(limit)s characters") % {"limit": MAX_TEMPLATE_LENGTH})
    try:
        sandbox_engine().from_string(text)
    except TemplateSyntaxError as error:
        raise InvalidTemplate(detail=str(error)) from None


@functools.lru_cache(maxsize=256)
def _compiled(text: str):
    """Compiled once per text, not once per message: a send renders the same few texts
    (variants x languages) thousands of times. Rendering a compiled template keeps no state
    in it, so the cache is safe across threads."""
    return sandbox_engine().from_string(text)


def render_text(text: str, context: dict) -> str:
    try:
        return _compiled(text).render(Context(context, autoescape=False))
    except TemplateSyntaxError as error:
        raise InvalidTemplate(detail=str(error)) from None


# --- The context: the whitelist of what a text can show ---------------------------------------

CONTEXT_HELP = {
    "first_name": "Erika", "last_name": "Mustermann", "name": "Erika Mustermann", "salutation": "Frau",
    "customer_number": "K123456789", "balance": 1250, "tier": "Gold", "points_expiring": 120,
    "points_expiring_date": "31.12.2026", "last_purchase": "05.03.2026", "bonus_points": 100,
    "voucher_code": "ABCD-EFGH-JKLM-NP", "voucher_name": "5 € Rabatt", "voucher_valid_until": "30.06.2026",
    "raffle_url": "https://…/c/r/…/", "raffle_entry_points": 50, "unsubscribe_url": "https://…/c/u/…/",
}


@dataclass(frozen=True)
class Extras:
    """Per-message values the sender adds to the member's data."""

    voucher_code: str = ""
    voucher_name: str = ""
    voucher_valid_until: datetime | None = None
    bonus_points: int = 0
    unsubscribe_url: str = ""
    raffle_url: str = ""
    raffle_entry_points: int = 0


def _date(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date()
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def member_context(member, *, extras: Extras | None = None, expiring_within_days: int | None = None,
                   now: datetime | None = None, expiring: int | None = None) -> dict:
    """The values a message text may use, in the member's language. `expiring`: the points
    expiring within the window, when the caller has looked them up for many members at once."""
    from rewards.services import points_expiring_by

    extras = extras or Extras()
    now = now or timezone.now()
    days = expiring_within_days or settings.LOYALTY_EXPIRY_WARNING_DAYS
    until = now + timedelta(days=days)
    if expiring is None:
        expiring = points_expiring_by(member_id=member.pk, at=until) if member.points_balance else 0
    with translation.override(member.language or settings.LANGUAGE_CODE):
        fallback_name = _("member")
        return {
            "first_name": member.first_name,
            "last_name": member.last_name,
            "name": member.full_name or fallback_name,
            "salutation": str(member.get_salutation_display()) if member.salutation else "",
            "customer_number": member.customer_number,
            "balance": member.points_balance,
            "tier": member.tier.name if member.tier_id else "",
            "points_expiring": expiring,
            "points_expiring_date": _date(until) if expiring else "",
            "last_purchase": _date(member.last_purchase_at),
            "bonus_points": extras.bonus_points,
            "voucher_code": extras.voucher_code,
            "voucher_name": extras.voucher_name,
            "voucher_valid_until": _date(extras.voucher_valid_until),
            "raffle_url": extras.raffle_url,
            "raffle_entry_points": extras.raffle_entry_points,
            "unsubscribe_url": extras.unsubscribe_url,
        }
