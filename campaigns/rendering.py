"""Message texts: Django template syntax, rendered in a sandbox.

Marketing staff write the texts in the admin, so the engine they get is cut down:
- only harmless tags (if, with, firstof, now, comment, …): no `load`, `include`, `extends`,
  `debug`, and no loops (a loop nest over a string is a cheap way to render gigabytes);
- only simple filters, none that pad to a given width (`center:"100000000"`);
- no template loaders, so nothing can be read from disk;
- a context of plain values (strings, numbers, dates) built here, never model instances, so a
  template can't follow a relation or call a method that reaches the database;
- bounded output: without loops a text can still double a value with `{% with b=a|add:a %}`,
  twenty-five times over in a kilobyte, and render hundreds of millions of characters. So
  every filter's result is checked against MAX_RENDERED_LENGTH (no value ever grows past it),
  every block's output is counted while it is rendered (the message as a whole can't either),
  block tags nest at most MAX_NESTING deep, and a render stops after RENDER_SECONDS.
  Going past a bound raises TemplateTooLarge (an InvalidTemplate): the admin form refuses the
  text on save (it is rendered once with sample values), previews show the error, a send
  records it as the message's failure.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import NodeList
from django.utils import formats, timezone, translation
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .errors import InvalidTemplate, TemplateTooLarge

ALLOWED_TAGS = ("if", "with", "firstof", "now", "spaceless", "comment", "filter", "templatetag", "verbatim",
                "autoescape")
ALLOWED_FILTERS = ("default", "default_if_none", "upper", "lower", "title", "capfirst", "date", "time", "yesno",
                   "pluralize", "truncatechars", "truncatewords", "cut", "add", "length", "escape", "striptags",
                   "linebreaksbr", "first", "last", "safe", "urlencode")

MAX_TEMPLATE_LENGTH = 10_000
MAX_RENDERED_LENGTH = 100_000  # a long newsletter is 20,000 characters; an SMS 160
MAX_NESTING = 20  # block tags inside block tags (Django parses and renders them recursively)
RENDER_SECONDS = 2.0  # a message renders in well under a millisecond


def _too_long() -> TemplateTooLarge:
    return TemplateTooLarge(detail=_("it renders more than %(limit)s characters") % {"limit": MAX_RENDERED_LENGTH})


def _bounded_filter(function):
    """The filter, refusing a result longer than a whole message may be. With it no variable
    (`{% with %}`) or filter chain can grow past the bound, however it is combined."""
    @functools.wraps(function)  # keeps is_safe, needs_autoescape, … and the signature Django checks
    def bounded(*args, **kwargs):
        result = function(*args, **kwargs)
        if isinstance(result, str | list | tuple) and len(result) > MAX_RENDERED_LENGTH:
            raise _too_long()
        return result

    return bounded


class _BoundedNodeList(NodeList):
    """A block's output, counted while it is rendered, and the time budget checked after each
    node; Django's NodeList joins everything first. Inner blocks are bounded themselves, so no
    piece is ever longer than the bound either."""

    def render(self, context):
        deadline = getattr(context, "deadline", None)
        if deadline is None:  # not rendered through render_text (never the case for our texts)
            return super().render(context)
        bits, length = [], 0
        for node in self:
            bit = node.render_annotated(context)
            length += len(bit)
            if length > MAX_RENDERED_LENGTH:
                raise _too_long()
            if time.monotonic() > deadline:
                raise TemplateTooLarge(detail=_("it takes longer than %(seconds)s seconds to render") % {
                    "seconds": RENDER_SECONDS})
            bits.append(bit)
        return SafeString("".join(bits))


class _BudgetContext(Context):
    """A context that carries the render's deadline (copies made by Context.new keep it)."""

    def __init__(self, values: dict, *, seconds: float) -> None:
        super().__init__(values, autoescape=False)
        self.deadline = time.monotonic() + seconds


def _bound_nodelists(template) -> None:
    """Turn every NodeList of the compiled template into a _BoundedNodeList and check the
    nesting depth. Iterative: the nesting this refuses would overflow a recursive walk."""
    template.nodelist.__class__ = _BoundedNodeList
    pending = [(template.nodelist, 1)]
    while pending:
        nodelist, depth = pending.pop()
        for node in nodelist:
            children = [value for value in vars(node).values() if isinstance(value, NodeList)]
            for pair in getattr(node, "conditions_nodelists", ()):  # {% if %}: (condition, nodelist) pairs
                children.append(pair[1])
            if children and depth > MAX_NESTING:  # this node is the depth-th nested block tag
                raise InvalidTemplate(detail=_("block tags nest more than %(limit)s deep") % {"limit": MAX_NESTING})
            for child in children:
                child.__class__ = _BoundedNodeList
                pending.append((child, depth + 1))


@functools.cache
def sandbox_engine(*, autoescape: bool = False) -> Engine:
    library = Library()
    for name in ALLOWED_TAGS:
        library.tags[name] = defaulttags.register.tags[name]
    for name in ALLOWED_FILTERS:
        library.filters[name] = _bounded_filter(defaultfilters.register.filters[name])
    engine = Engine(loaders=[], libraries={}, autoescape=autoescape)
    engine.template_builtins = [library]  # replaces Django's default tags, filters and loader tags
    engine.template_libraries = {}
    return engine


def _compile(text: str):
    try:
        template = sandbox_engine().from_string(text)
    except TemplateSyntaxError as error:
        raise InvalidTemplate(detail=str(error)) from None
    except RecursionError:  # Django's parser recurses once per nested block tag
        raise InvalidTemplate(detail=_("block tags nest more than %(limit)s deep") % {"limit": MAX_NESTING}) from None
    _bound_nodelists(template)
    return template


def template_validate(text: str) -> None:
    """Raise InvalidTemplate if `text` does not compile in the sandbox, or does not render
    within the bounds with the sample values (and with every sample text at its longest)."""
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise InvalidTemplate(detail=_("at most %(limit)s characters") % {"limit": MAX_TEMPLATE_LENGTH})
    _compile(text)
    for context in (CONTEXT_HELP, LONGEST_CONTEXT):
        render_text(text, context)


@functools.lru_cache(maxsize=256)
def _compiled(text: str):
    """Compiled once per text, not once per message: a send renders the same few texts
    (variants x languages) thousands of times. Rendering a compiled template keeps no state
    in it, so the cache is safe across threads."""
    return _compile(text)


def render_text(text: str, context: dict) -> str:
    template = _compiled(text)
    try:
        return template.render(_BudgetContext(context, seconds=RENDER_SECONDS))
    except TemplateSyntaxError as error:
        raise InvalidTemplate(detail=str(error)) from None
    except RecursionError:  # cannot happen below MAX_NESTING; a clear error if it ever does
        raise InvalidTemplate(detail=_("block tags nest more than %(limit)s deep") % {"limit": MAX_NESTING}) from None


def shows_value(text: str, name: str) -> bool:
    """Whether the text, rendered with the sample values, shows the value of `name` unchanged
    (a raffle's entry link: inside a comment, an `{% if %}` the sample fails or a filter that
    alters it, the link would not reach the member as it must)."""
    sentinel = f"https://placeholder.invalid/{name}/"
    try:
        return sentinel in render_text(text, {**CONTEXT_HELP, name: sentinel})
    except InvalidTemplate:  # reported on its own by template_validate
        return True


# The raffle's entry link: every raffle text must show it (campaigns.services, the console's form).
RAFFLE_LINK = "raffle_url"


def raffle_link_missing_text() -> str:
    return _("a raffle's text must contain the entry link {{ %(name)s }}") % {"name": RAFFLE_LINK}


# --- The context: the whitelist of what a text can show ---------------------------------------

CONTEXT_HELP = {
    "first_name": "Erika", "last_name": "Mustermann", "name": "Erika Mustermann", "salutation": "Frau",
    "customer_number": "K123456789", "balance": 1250, "tier": "Gold", "points_expiring": 120,
    "points_expiring_date": "31.12.2026", "last_purchase": "05.03.2026", "bonus_points": 100,
    "voucher_code": "ABCD-EFGH-JKLM-NP", "voucher_name": "5 € Rabatt", "voucher_valid_until": "30.06.2026",
    "raffle_url": "https://…/c/r/…/", "raffle_entry_points": 50, "unsubscribe_url": "https://…/c/u/…/",
}
# The placeholders in words, for the picker next to the text fields in the console (same keys
# as CONTEXT_HELP: a value added there without a label here fails tests/campaigns).
PLACEHOLDER_LABELS = {
    "first_name": gettext_lazy("First name"), "last_name": gettext_lazy("Last name"),
    "name": gettext_lazy("Full name"), "salutation": gettext_lazy("Salutation (Frau/Herr)"),
    "customer_number": gettext_lazy("Customer number"), "balance": gettext_lazy("Points balance"),
    "tier": gettext_lazy("Tier"), "points_expiring": gettext_lazy("Expiring points"),
    "points_expiring_date": gettext_lazy("Date the points expire"),
    "last_purchase": gettext_lazy("Date of the last purchase"), "bonus_points": gettext_lazy("Bonus points"),
    "voucher_code": gettext_lazy("Voucher code"), "voucher_name": gettext_lazy("Voucher name"),
    "voucher_valid_until": gettext_lazy("Voucher valid until"), "raffle_url": gettext_lazy("Raffle entry link"),
    "raffle_entry_points": gettext_lazy("Points per raffle entry"),
    "unsubscribe_url": gettext_lazy("Unsubscribe link"),
}


def placeholders() -> list[tuple[str, str]]:
    """(placeholder as typed in a text, label in words) for every value a text may show."""
    return [(f"{{{{ {key} }}}}", str(PLACEHOLDER_LABELS[key])) for key in CONTEXT_HELP]


def preview_line(body: str, *, limit: int = 120) -> str:
    """The line a mail client shows after the subject (the preheader): the first non-empty
    line of the rendered text, cut at `limit` characters."""
    for line in body.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


# The sample values with every text as long as a member's field can make it (names are at most
# 200 characters): a text that only blows up with long names is refused on save as well.
LONGEST_CONTEXT = {key: (value + "x" * (200 - len(value)) if isinstance(value, str) else value)
                   for key, value in CONTEXT_HELP.items()}


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
    from rewards.figures import points_expiring_by

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
