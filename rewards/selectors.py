"""Reads over the ledger: the invariant checks (hand-written SQL), the member's points, ledger
and vouchers for the portal and the console's 360° page, and the programme terms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.audit import audit_trail_of
from members.models import Member, Tier
from partners.models import Partner

from . import programme
from .donations import LEDGER_SOURCE as DONATION_SOURCE
from .donations import REFUND_SOURCE as DONATION_REFUND_SOURCE
from .figures import points_expiring_by, points_expiring_by_moments, qualifying_points
from .models import (
    CashbackProgram,
    Donation,
    EarningRule,
    PointEntry,
    Purchase,
    PurchasePoints,
    Redemption,
    Reward,
    StampCardProgram,
    TierMembership,
)
from .rule_cache import tier_ladder
from .tier_memberships import fee_return_days

_BALANCE_MISMATCH_SQL = """
    SELECT m.id, m.points_balance, COALESCE(e.total, 0)
    FROM members_member m
    LEFT JOIN (SELECT member_id, SUM(points) AS total FROM rewards_pointentry GROUP BY member_id) e
           ON e.member_id = m.id
    WHERE m.points_balance <> COALESCE(e.total, 0)
    ORDER BY m.id
    LIMIT %s
"""

_PENDING_MISMATCH_SQL = """
    SELECT m.id, m.points_pending, COALESCE(p.total, 0)
    FROM members_member m
    LEFT JOIN (SELECT member_id, SUM(points_pending) AS total FROM rewards_purchase
               WHERE points_pending > 0 GROUP BY member_id) p
           ON p.member_id = m.id
    WHERE m.points_pending <> COALESCE(p.total, 0)
    ORDER BY m.id
    LIMIT %s
"""


def ledger_mismatches(*, limit: int = 50) -> list[tuple[int, int, int]]:
    """Members whose cached balance differs from the sum of their entries."""
    with connection.cursor() as cursor:
        cursor.execute(_BALANCE_MISMATCH_SQL, [limit])
        return [tuple(row) for row in cursor.fetchall()]


def pending_mismatches(*, limit: int = 50) -> list[tuple[int, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_MISMATCH_SQL, [limit])
        return [tuple(row) for row in cursor.fetchall()]


# The distinct sources of entries with a reference, read as a "loose index scan" of the unique
# (source, reference) index: one descent per source instead of a scan of millions of entries.
_REFERENCE_SOURCES_SQL = """
    WITH RECURSIVE sources AS (
        (SELECT source FROM rewards_pointentry WHERE reference <> '' ORDER BY source LIMIT 1)
        UNION ALL
        SELECT (SELECT e.source FROM rewards_pointentry e
                WHERE e.reference <> '' AND e.source > sources.source ORDER BY e.source LIMIT 1)
        FROM sources WHERE sources.source IS NOT NULL
    )
    SELECT source FROM sources WHERE source IS NOT NULL
"""


def purchase_ids_with_order_reference(references: list[str]) -> list[int]:
    """Purchases by order reference, through the unique (partner, order_reference) index: with the
    partners named, one descent each, instead of a scan of every purchase."""
    partners = list(Partner.objects.values_list("pk", flat=True))
    return list(Purchase.objects.filter(partner__in=partners, order_reference__in=references)
                .values_list("pk", flat=True))


def ledger_reference_sources() -> list[str]:
    """Every `source` of ledger entries that carry a reference: with them, a search by reference
    alone can use the unique (source, reference) index (PostgreSQL 15 cannot skip its first column)."""
    with connection.cursor() as cursor:
        cursor.execute(_REFERENCE_SOURCES_SQL)
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class TierProgress:
    current: Tier | None
    next: Tier | None
    qualifying_points: int
    points_to_next: int
    percent: int  # 0-100, for a progress bar


def tier_progress(member: Member, *, qualifying: int | None = None) -> TierProgress:
    """Where the member stands on the ladder: qualifying points (rolling window) and the gap.
    `qualifying`: the member's qualifying points when the caller already has them."""
    points = qualifying_points(member.pk) if qualifying is None else qualifying
    current = member.tier
    current_rank = current.rank if current else -1
    upcoming = next((tier for tier in tier_ladder() if tier.rank > current_rank and not tier.is_membership), None)
    if upcoming is None:
        return TierProgress(current, None, points, 0, 100)
    floor = current.threshold_points if current else 0
    span = max(1, upcoming.threshold_points - floor)
    percent = max(0, min(100, (points - floor) * 100 // span))
    return TierProgress(current, upcoming, points, max(0, upcoming.threshold_points - points), percent)


@dataclass(frozen=True)
class MembershipStatus:
    tier: Tier
    source: str  # TierMembership.Source
    ends: date  # the last day, renewals already paid for included


def membership_status(member: Member, *, today: date | None = None) -> MembershipStatus | None:
    """The paid or invitation membership the member's tier comes from, and until when it runs
    (a renewal following on counts). None when the member's tier is their points tier."""
    tier = member.tier
    if tier is None or not tier.is_membership:
        return None
    today = today or timezone.localdate()
    rows = list(TierMembership.objects.filter(member=member, tier=tier, status=TierMembership.Status.ACTIVE,
                                              ends__gte=today).order_by("starts").values_list("starts", "ends",
                                                                                              "source"))
    if not rows or rows[0][0] > today:
        return None
    ends, source = rows[0][1], rows[0][2]
    for starts, later_ends, _source in rows[1:]:
        if starts > ends + timedelta(days=1):
            break  # not contiguous: a gap before it
        ends = max(ends, later_ends)
    return MembershipStatus(tier=tier, source=source, ends=ends)


def points_expiring_soon(member: Member) -> tuple[int, object]:
    """Points that expire within the warning window unless spent first, and the window's end."""
    until = timezone.now() + timedelta(days=settings.LOYALTY_EXPIRY_WARNING_DAYS)
    return points_expiring_by(member_id=member.pk, at=until), until


def member_overview(member: Member, *, entries: int = 25, purchases: int = 10) -> dict:
    """Everything the console's 360° page shows, with a bounded number of queries.

    Members merged into this one are part of the picture: their ledger rows and merges show too."""
    merged_ids = list(member.merged_members.values_list("pk", flat=True))
    expiring, expiring_until = points_expiring_soon(member)
    return {
        "progress": tier_progress(member),
        "expiring": expiring,
        "expiring_until": expiring_until,
        "memberships": list(TierMembership.objects.filter(member=member)
                            .select_related("tier", "fee_purchase", "invited_by").order_by("-starts", "-id")[:20]),
        "entries": list(
            PointEntry.objects.filter(member_id__in=[member.pk, *merged_ids])
            .select_related("purchase", "created_by", "member")
            .order_by("-created_at", "-id")[:entries]
        ),
        "purchases": list(
            Purchase.objects.filter(member=member)
            .select_related("store", "partner")
            .prefetch_related("breakdown__rule", "breakdown__tier", "returns")
            .order_by("-occurred_at", "-id")[:purchases]
        ),
        "consents": list(member.consents.order_by("-created_at", "-id")[:20]),
        "tier_history": list(member.tier_history.select_related("from_tier", "to_tier", "created_by")[:10]),
        "merged_members": list(member.merged_members.all()),
        "audit": audit_trail_of(member, limit=10),
    }


# --- Member portal: points, ledger and vouchers ------------------------------------------------
# Reads for the member's own pages. Every function takes the signed-in member and returns only
# rows that belong to them (or to duplicates merged into them: the same person).

def _same_person(member: Member) -> list[int]:
    return [member.pk, *member.merged_members.values_list("pk", flat=True)]


@dataclass(frozen=True)
class ExpiringPoints:
    total: int
    until: object
    schedule: list[tuple[object, int]]  # (date, points expiring that day), earliest first


def points_expiring_schedule(member: Member, *, max_days: int = 6) -> ExpiringPoints:
    """Points expiring within the warning window, by day. Each day's figure comes from
    rewards.figures.points_expiring_by (the ledger's own rule: older credits are spent first),
    as the difference to the day before; days after the first `max_days` are folded into the
    total only."""
    total, until = points_expiring_soon(member)
    if total <= 0:
        return ExpiringPoints(0, until, [])
    now = timezone.now()
    moments = sorted(set(
        PointEntry.objects.filter(member_id__in=_same_person(member), points__gt=0, expires_at__gt=now,
                                  expires_at__lte=until).values_list("expires_at", flat=True)
    ))
    # One query for every moment (not one per expiry date): what is due by then.
    due_by = points_expiring_by_moments(member_id=member.pk, moments=[now, *moments])
    previous = due_by[now]  # due already, not yet run by the job
    by_day: dict = {}
    for moment in moments:
        if len(by_day) >= max_days or previous >= total:
            break
        due = due_by[moment]
        if due > previous:
            day = timezone.localtime(moment).date()
            by_day[day] = by_day.get(day, 0) + due - previous
        previous = due
    return ExpiringPoints(total, until, sorted(by_day.items()))


@dataclass
class LedgerLine:
    """One ledger entry as the member reads it: what it was, and why."""

    entry: object
    title: str
    details: list[tuple[str, int | None]]  # (text, points or None)
    purchase: object = None
    voucher: object = None


def ledger_entries(member: Member):
    return (PointEntry.objects.filter(member_id__in=_same_person(member))
            .select_related("purchase__store").order_by("-created_at", "-id"))


def explain_entries(member: Member, entries) -> list[LedgerLine]:
    """Explain a page of entries with a fixed number of queries: the purchases' breakdowns and
    the vouchers behind redemption entries are loaded for the page at once."""
    from django.utils.translation import gettext as _

    entries = list(entries)
    purchase_ids = {entry.purchase_id for entry in entries if entry.purchase_id}
    breakdown: dict[int, list] = {}
    for part in (PurchasePoints.objects.filter(purchase_id__in=purchase_ids).select_related("rule", "tier")
                 .order_by("id")):
        breakdown.setdefault(part.purchase_id, []).append(part)
    codes = {entry.reference for entry in entries if entry.source in ("redemption", "redemption-refund")}
    vouchers = {voucher.code: voucher for voucher in
                Redemption.objects.filter(member_id__in=_same_person(member), code__in=codes).select_related("reward")}
    causes = _donation_causes(entries)
    kind = PointEntry.Kind
    lines = []
    for entry in entries:
        purchase, voucher, details = entry.purchase, None, []
        if purchase is not None and entry.kind == kind.EARN:
            title = _("Purchase %(reference)s") % {"reference": purchase.order_reference}
            details = [(part.describe(), part.points) for part in breakdown.get(purchase.pk, [])]
        elif purchase is not None and entry.kind == kind.REVERSAL:
            title = _("Return of purchase %(reference)s") % {"reference": purchase.order_reference}
        elif entry.source in ("redemption", "redemption-refund"):
            voucher = vouchers.get(entry.reference)
            name = voucher.reward.name if voucher else entry.reference
            title = (_("Voucher: %(reward)s") if entry.kind == kind.REDEEM
                     else _("Voucher refunded: %(reward)s")) % {"reward": name}
        elif entry.source in (DONATION_SOURCE, DONATION_REFUND_SOURCE):
            cause = causes.get(entry.reference, entry.reference)
            title = (_("Donation to %(cause)s") if entry.kind == kind.REDEEM
                     else _("Donation cancelled: %(cause)s")) % {"cause": cause}
        elif entry.source == "referral":  # in the reader's language, whatever was active at payment
            title = _("Referral bonus")
        elif entry.kind == kind.ADJUST:
            title = _("Correction by our service team")
            details = [(entry.shown_reason, None)] if entry.reason or entry.reason_code else []
        elif entry.kind == kind.EXPIRE:
            title = _("Points expired")
            details = [(_("Points expire %(months)s months after they were earned.")
                        % {"months": settings.LOYALTY_POINTS_EXPIRY_MONTHS}, None)]
        elif entry.kind == kind.TRANSFER:
            title = _("Points moved from a merged customer account")
        else:
            title = entry.shown_reason or entry.get_kind_display()
        lines.append(LedgerLine(entry=entry, title=title, details=details, purchase=purchase, voucher=voucher))
    return lines


def _donation_causes(entries: list[PointEntry]) -> dict[str, str]:
    """The cause's name (in the reader's language) per donation ledger reference (the redemption id)."""
    ids = [int(entry.reference) for entry in entries
           if entry.source in (DONATION_SOURCE, DONATION_REFUND_SOURCE) and entry.reference.isdigit()]
    if not ids:
        return {}
    return {str(donation.redemption_id): donation.cause.name
            for donation in Donation.objects.filter(redemption_id__in=ids).select_related("cause")}


def pending_purchases(member: Member):
    """Purchases whose points are held until the return window ends."""
    return list(Purchase.objects.filter(member=member, points_pending__gt=0).select_related("store")
                .order_by("available_at", "id"))


def vouchers_of(member: Member):
    """The member's vouchers: donations (no code) are not vouchers and never show among them."""
    return (Redemption.objects.filter(member_id__in=_same_person(member), code__isnull=False)
            .select_related("reward"))


# --- Program terms (Bonusbedingungen), generated from the live configuration --------------------

@dataclass(frozen=True)
class RuleTerms:
    name: str
    effect: str
    conditions: list[str]


def _rule_terms(rule) -> RuleTerms:
    from django.utils.formats import date_format, number_format
    from django.utils.translation import gettext as _
    from django.utils.translation import ngettext

    whole = rule.value == rule.value.to_integral_value()
    value = number_format(int(rule.value) if whole else rule.value)
    count = int(rule.value) if whole else 2  # "1 point", "1.5 points"
    unit = rule.currency or _("euro or franc")
    if rule.effect == EarningRule.Effect.BASE_RATE:
        effect = ngettext("%(value)s point per %(unit)s spent", "%(value)s points per %(unit)s spent",
                          count) % {"value": value, "unit": unit}
    elif rule.effect == EarningRule.Effect.MULTIPLIER:
        effect = _("%(value)s× the base points") % {"value": value}
    else:
        effect = ngettext("%(value)s bonus point per purchase", "%(value)s bonus points per purchase",
                          count) % {"value": value}
    conditions = []
    if rule.min_amount is not None:
        # The threshold is in the rule's currency (a CHF purchase does not meet "100 EUR").
        conditions.append(_("purchases of at least %(amount)s %(currency)s") % {
            "amount": number_format(rule.min_amount, 2), "currency": rule.currency})
    if rule.channel:
        conditions.append(_("channel: %(channel)s") % {"channel": rule.get_channel_display()})
    if rule.category:
        conditions.append(_("products in the category %(category)s") % {"category": rule.category})
    stores = [store.name for store in rule.stores.all()]
    if stores:
        conditions.append(_("in %(stores)s") % {"stores": ", ".join(stores)})
    if rule.tier_id:
        conditions.append(_("for the %(tier)s tier") % {"tier": rule.tier.name})
    if rule.weekday_set:
        from django.utils.dates import WEEKDAYS

        days = ", ".join(str(WEEKDAYS[day]) for day in sorted(rule.weekday_set) if day in WEEKDAYS)
        conditions.append(_("on %(days)s") % {"days": days})
    if rule.valid_until:
        conditions.append(_("until %(date)s") % {"date": date_format(timezone.localtime(rule.valid_until),
                                                                     "SHORT_DATE_FORMAT")})
    if rule.cap_points:
        conditions.append(_("at most %(points)s points per %(period)s") % {
            "points": rule.cap_points, "period": rule.get_cap_period_display()})
    if not rule.stackable:
        conditions.append(_("not combined with other promotions"))
    return RuleTerms(name=rule.name, effect=effect, conditions=conditions)


def program_terms() -> dict:
    """Everything the terms page states, read from the rules, tiers and settings in force now."""
    now = timezone.now()
    rules = list(EarningRule.objects.in_force(now).select_related("tier").prefetch_related("stores"))
    base = EarningRule.Effect.BASE_RATE
    rewards = list(Reward.objects.filter(active=True, in_catalogue=True).select_related("min_tier"))
    return {
        "base_rules": [_rule_terms(rule) for rule in rules if rule.effect == base],
        "promotions": [_rule_terms(rule) for rule in rules if rule.effect != base],
        "tiers": list(Tier.objects.points_based().order_by("rank")),
        "membership_tiers": list(Tier.objects.memberships().order_by("-rank")),
        "membership_return_days": fee_return_days(),
        "tier_window_days": settings.LOYALTY_TIER_WINDOW_DAYS,
        "expiry_months": settings.LOYALTY_POINTS_EXPIRY_MONTHS,
        "expiry_warning_days": settings.LOYALTY_EXPIRY_WARNING_DAYS,
        "return_window_days": programme.return_window_days(),
        "refund_expired_vouchers": settings.LOYALTY_REFUND_EXPIRED_VOUCHERS,
        "voucher_days": sorted({reward.voucher_valid_days for reward in rewards}),
        "rewards_with_tier": [reward for reward in rewards if reward.min_tier_id],
        "rewards_with_limit": [reward for reward in rewards if reward.limit_per_member],
        "stamp_programs": list(StampCardProgram.objects.filter(active=True).select_related("reward")),
        "cashback": CashbackProgram.objects.filter(active=True).select_related("reward").first(),
        "as_of": now,
    }
