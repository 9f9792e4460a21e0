"""Template filters for the console's figures (loyalty_site.formatting): {% load figures %}."""

from __future__ import annotations

from django import template
from django.utils import timezone

from loyalty_site import formatting

register = template.Library()


@register.filter
def figure(value, decimals=0):
    return formatting.figure(value, int(decimals))


@register.filter
def money(value):
    return formatting.money(value)


@register.filter
def percent(share, decimals=1):
    return formatting.percent(share, int(decimals))


@register.filter
def percent_points(points, decimals=1):
    """Percentage points (already × 100) with the language's decimal comma or point."""
    return formatting.figure(points, int(decimals))


@register.filter(expects_localtime=True)
def console_date(value):
    return "" if value in (None, "") else formatting.day(value)


@register.filter
def console_datetime(value):
    if value in (None, ""):
        return ""
    return formatting.day_and_time(timezone.localtime(value) if timezone.is_aware(value) else value)


@register.filter
def console_month(value):
    return "" if value in (None, "") else formatting.month(value)
