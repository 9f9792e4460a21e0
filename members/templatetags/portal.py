"""Template helpers of the member portal."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import date
from django.urls import NoReverseMatch, reverse
from django.utils.formats import number_format
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

register = template.Library()

# (URL name, label, URL names that mark the item as current). "Freunde werben" and "Feedback"
# appear by themselves once their apps add portal pages named "referrals:portal" and
# "feedback:portal" (issues of their own).
NAVIGATION = [
    ("portal:dashboard", _("Overview"), {"dashboard", "card"}),
    ("portal:activity", _("Activity"), {"activity"}),
    ("portal:rewards", _("Rewards"), {"rewards", "redeem", "vouchers", "voucher"}),
    ("engagement:portal", _("Challenges"), set()),
    ("offers:portal", _("Coupons"), set()),
    ("raffles:portal", _("Raffles"), set()),
    ("referrals:portal", _("Refer friends"), set()),
    ("feedback:portal", _("Feedback"), set()),
    ("portal:profile", _("Profile"), {"profile"}),
    ("portal:privacy", _("Privacy"), {"privacy", "delete"}),
]


@register.simple_tag(takes_context=True)
def portal_navigation(context) -> list[dict]:
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    current = match.url_name if match else None
    namespace = match.namespace if match else None
    items = []
    for name, label, names in NAVIGATION:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        own_namespace = name.split(":", 1)[0]
        # Another app's portal pages are all "its" item; ours are told apart by URL name.
        active = namespace == own_namespace and (own_namespace != "portal" or current in names)
        items.append({"url": url, "label": label, "active": active})
    return items


@register.filter
def signed_points(value: int) -> str:
    """+120 / −40 with a real minus sign (read correctly by screen readers and in tables)."""
    sign = "+" if value > 0 else "−"
    return f"{sign}{number_format(abs(value), force_grouping=True)}"


# A date as members read it: 04.12.2026 in German, 4 Dec 2026 in English (the en locale's
# SHORT_DATE_FORMAT, 12/04/2026, reads as 12 April to most of our members).
_MEMBER_DATE_FORMATS = {"de": "d.m.Y"}


@register.filter(expects_localtime=True)
def member_date(value) -> str:
    language = (get_language() or "de").split("-")[0]
    return date(value, _MEMBER_DATE_FORMATS.get(language, "j M Y"))


@register.filter(expects_localtime=True)
def member_datetime(value) -> str:
    """04.12.2026 14:30 / 4 Dec 2026 14:30: the member's date and the time on a 24-hour clock."""
    if value in (None, ""):
        return ""
    return f"{member_date(value)} {date(value, 'H:i')}"


@register.simple_tag(takes_context=True)
def portal_account(context) -> str:
    """Which portal account this page is for, as the service worker knows it (members.pwa): the
    worker drops a stored card of any other account. Empty when nobody (or staff) is signed in."""
    from members.pwa import portal_account_key

    user = getattr(context.get("request"), "user", None)
    if user is None or not user.is_authenticated or user.is_staff:
        return ""
    return portal_account_key(user.pk)
