"""Who a triggered campaign is due for right now: (member id, occurrence) pairs.

The beat job runs every few minutes and asks each active triggered campaign for its
candidates. An event counts when it happened within the look-back window
(LOYALTY_TRIGGER_LOOKBACK_HOURS, default two days): a beat that was down for a while catches
up, and switching a campaign on does not mail everyone whose event lies months back. The
occurrence names the event (the birthday's year, the purchase day, the tier change …); with
the unique (campaign, member, occurrence) constraint it is what makes a trigger fire once per
event however often the job runs.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from members.models import Member, TierHistory

from .models import Campaign, Message
from .segments import segment_queryset

# Members' time zones by country (a birthday begins at the member's midnight). Countries not
# listed use settings.TIME_ZONE.
COUNTRY_TIME_ZONES = {
    "DE": "Europe/Berlin", "AT": "Europe/Vienna", "CH": "Europe/Zurich", "LI": "Europe/Vaduz",
    "LU": "Europe/Luxembourg", "IT": "Europe/Rome", "FR": "Europe/Paris", "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels", "PL": "Europe/Warsaw", "CZ": "Europe/Prague", "DK": "Europe/Copenhagen",
    "GB": "Europe/London", "IE": "Europe/Dublin", "PT": "Europe/Lisbon", "FI": "Europe/Helsinki",
    "GR": "Europe/Athens",
}

Pair = tuple[int, str]


def _lookback() -> timedelta:
    return timedelta(hours=settings.LOYALTY_TRIGGER_LOOKBACK_HOURS)


def _audience(campaign: Campaign, now: datetime) -> QuerySet[Member]:
    return segment_queryset(campaign.segment, now=now)


def _not_messaged(members: QuerySet[Member], campaign: Campaign, occurrence: str) -> QuerySet[Member]:
    """Skip members who already have this occurrence (an anti-join on the unique index)."""
    return members.filter(~Exists(Message.objects.filter(campaign=campaign, member=OuterRef("pk"),
                                                         occurrence=occurrence)))


def welcome(campaign: Campaign, now: datetime) -> Iterable[Pair]:
    members = _audience(campaign, now).filter(joined_at__gt=now - _lookback(), joined_at__lte=now)
    return ((pk, "welcome") for pk in _not_messaged(members, campaign, "welcome").values_list("pk", flat=True))


def _birthday_q(today) -> Q:
    q = Q(birth_date__month=today.month, birth_date__day=today.day)
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        q |= Q(birth_date__month=2, birth_date__day=29)  # leap-day birthdays are kept on the 28th
    return q


def birthday(campaign: Campaign, now: datetime) -> Iterable[Pair]:
    """Members whose birthday it is today in their own time zone, from the send hour on."""
    default_zone = settings.TIME_ZONE
    zones: dict[str, list[str]] = {}
    for country, zone in COUNTRY_TIME_ZONES.items():
        zones.setdefault(zone, []).append(country)
    zones.setdefault(default_zone, [])
    audience = _audience(campaign, now).filter(birth_date__isnull=False)
    pairs: list[Pair] = []
    for zone, countries in zones.items():
        local = now.astimezone(ZoneInfo(zone))
        if local.hour < settings.LOYALTY_BIRTHDAY_SEND_HOUR:
            continue
        if zone == default_zone:
            where = Q(country__in=countries) | ~Q(country__in=list(COUNTRY_TIME_ZONES))
        else:
            where = Q(country__in=countries)
        occurrence = f"birthday:{local.year}"
        members = _not_messaged(audience.filter(where).filter(_birthday_q(local.date())), campaign, occurrence)
        pairs.extend((pk, occurrence) for pk in members.values_list("pk", flat=True))
    return pairs


def after_purchase(campaign: Campaign, now: datetime) -> Iterable[Pair]:
    """N days after a purchase: one message per member and purchase day."""
    from rewards.models import Purchase

    due = now - timedelta(days=campaign.trigger_days or 0)
    purchases = (Purchase.objects.filter(occurred_at__gt=due - _lookback(), occurred_at__lte=due,
                                         member__in=_audience(campaign, now).values("pk"))
                 .values_list("member_id", "occurred_at"))
    return {(member_id, f"purchase:{timezone.localdate(at).isoformat()}") for member_id, at in purchases}


def inactivity(campaign: Campaign, now: datetime) -> Iterable[Pair]:
    """N days without a purchase (or since joining, for members who never bought): once per
    lapse; a member who buys again and lapses again is won back again."""
    due = now - timedelta(days=campaign.trigger_days or 0)
    window = Q(last_purchase_at__gt=due - _lookback(), last_purchase_at__lte=due)
    never = Q(last_purchase_at__isnull=True, joined_at__gt=due - _lookback(), joined_at__lte=due)
    pairs = set()
    for pk, last in _audience(campaign, now).filter(window | never).values_list("pk", "last_purchase_at"):
        pairs.add((pk, f"inactive:{timezone.localdate(last).isoformat()}" if last else "inactive:never"))
    return pairs


def tier_upgrade(campaign: Campaign, now: datetime) -> Iterable[Pair]:
    changes = TierHistory.objects.filter(
        created_at__gt=now - _lookback(), created_at__lte=now, from_tier__isnull=False,
        to_tier__rank__gt=F("from_tier__rank"), member__in=_audience(campaign, now).values("pk"),
    ).values_list("member_id", "pk")
    return [(member_id, f"tier:{change_id}") for member_id, change_id in changes]


def points_milestone(campaign: Campaign, now: datetime) -> Iterable[Pair]:
    """The balance reached the milestone: once per member."""
    occurrence = f"milestone:{campaign.trigger_points or 0}"
    members = _audience(campaign, now).filter(points_balance__gte=campaign.trigger_points or 0)
    return ((pk, occurrence) for pk in _not_messaged(members, campaign, occurrence).values_list("pk", flat=True))


def points_expiring(campaign: Campaign, now: datetime) -> Iterable[Pair]:
    """Points will expire within N days: at most one warning per member and month. Candidates
    come from the expiry index; the exact amount is then checked with the ledger's formula."""
    from rewards.figures import points_expiring_by
    from rewards.models import PointEntry

    until = now + timedelta(days=campaign.trigger_days or settings.LOYALTY_EXPIRY_WARNING_DAYS)
    occurrence = f"expiring:{timezone.localdate(now):%Y-%m}"
    credits_due = PointEntry.objects.filter(member=OuterRef("pk"), points__gt=0, expires_at__gt=now,
                                            expires_at__lte=until)
    candidates = _not_messaged(_audience(campaign, now).filter(points_balance__gt=0).filter(Exists(credits_due)),
                               campaign, occurrence)
    return [(pk, occurrence) for pk in candidates.values_list("pk", flat=True)
            if points_expiring_by(member_id=pk, at=until) > 0]


CANDIDATES = {
    Campaign.Trigger.WELCOME: welcome,
    Campaign.Trigger.BIRTHDAY: birthday,
    Campaign.Trigger.AFTER_PURCHASE: after_purchase,
    Campaign.Trigger.INACTIVITY: inactivity,
    Campaign.Trigger.TIER_UPGRADE: tier_upgrade,
    Campaign.Trigger.POINTS_MILESTONE: points_milestone,
    Campaign.Trigger.POINTS_EXPIRING: points_expiring,
}


def due_pairs(campaign: Campaign, now: datetime) -> list[Pair]:
    return list(CANDIDATES[campaign.trigger](campaign, now))
