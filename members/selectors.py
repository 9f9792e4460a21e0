"""Reads about members shared by the console, the portal and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from loyalty_site.audit import audit_trail_of

from .models import Member, MemberCode, PartnerRelation, Tier, hash_member_code, normalize_member_code


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
    from rewards.figures import qualifying_points
    from rewards.rule_cache import tier_ladder

    points = qualifying_points(member.pk) if qualifying is None else qualifying
    current = member.tier
    current_rank = current.rank if current else -1
    upcoming = next((tier for tier in tier_ladder() if tier.rank > current_rank), None)
    if upcoming is None:
        return TierProgress(current, None, points, 0, 100)
    floor = current.threshold_points if current else 0
    span = max(1, upcoming.threshold_points - floor)
    percent = max(0, min(100, (points - floor) * 100 // span))
    return TierProgress(current, upcoming, points, max(0, upcoming.threshold_points - points), percent)


def points_expiring_soon(member: Member) -> tuple[int, object]:
    """Points that expire within the warning window unless spent first, and the window's end."""
    from rewards.figures import points_expiring_by

    until = timezone.now() + timedelta(days=settings.LOYALTY_EXPIRY_WARNING_DAYS)
    return points_expiring_by(member_id=member.pk, at=until), until


def member_overview(member: Member, *, entries: int = 25, purchases: int = 10) -> dict:
    """Everything the console's 360° page shows, with a bounded number of queries.

    Members merged into this one are part of the picture: their ledger rows and merges show too."""
    from rewards.models import PointEntry, Purchase

    merged_ids = list(member.merged_members.values_list("pk", flat=True))
    expiring, expiring_until = points_expiring_soon(member)
    return {
        "progress": tier_progress(member),
        "expiring": expiring,
        "expiring_until": expiring_until,
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


# --- Member portal -----------------------------------------------------------------------------
# Reads for the member's own pages. Every function takes the signed-in member and returns only
# rows that belong to them (or to duplicates merged into them: the same person).

def member_for_user(user) -> Member | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Member.objects.select_related("tier").filter(user=user).first()


def login_waits_for_member_email_confirmation(user) -> bool:
    """Does a verified address of this login belong to a member whose address staff changed and
    nobody has confirmed yet (members.services.member_link_or_enrol does not link those)?"""
    from allauth.account.models import EmailAddress

    addresses = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    return any(Member.objects.filter(email__iexact=address, email_confirmed=False).exists() for address in addresses)


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
    from rewards.figures import points_expiring_by
    from rewards.models import PointEntry

    total, until = points_expiring_soon(member)
    if total <= 0:
        return ExpiringPoints(0, until, [])
    now = timezone.now()
    moments = sorted(set(
        PointEntry.objects.filter(member_id__in=_same_person(member), points__gt=0, expires_at__gt=now,
                                  expires_at__lte=until).values_list("expires_at", flat=True)
    ))
    previous = points_expiring_by(member_id=member.pk, at=now)  # due already, not yet run by the job
    by_day: dict = {}
    for moment in moments:
        if len(by_day) >= max_days or previous >= total:
            break
        due = points_expiring_by(member_id=member.pk, at=moment)
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
    from rewards.models import PointEntry

    return (PointEntry.objects.filter(member_id__in=_same_person(member))
            .select_related("purchase__store").order_by("-created_at", "-id"))


def explain_entries(member: Member, entries) -> list[LedgerLine]:
    """Explain a page of entries with a fixed number of queries: the purchases' breakdowns and
    the vouchers behind redemption entries are loaded for the page at once."""
    from django.utils.translation import gettext as _

    from rewards.models import PointEntry, PurchasePoints, Redemption

    entries = list(entries)
    purchase_ids = {entry.purchase_id for entry in entries if entry.purchase_id}
    breakdown: dict[int, list] = {}
    for part in (PurchasePoints.objects.filter(purchase_id__in=purchase_ids).select_related("rule", "tier")
                 .order_by("id")):
        breakdown.setdefault(part.purchase_id, []).append(part)
    codes = {entry.reference for entry in entries if entry.source in ("redemption", "redemption-refund")}
    vouchers = {voucher.code: voucher for voucher in
                Redemption.objects.filter(member_id__in=_same_person(member), code__in=codes).select_related("reward")}
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
        elif entry.source == "referral":  # in the reader's language, whatever was active at payment
            title = _("Referral bonus")
        elif entry.kind == kind.ADJUST:
            title = _("Correction by our service team")
            details = [(entry.reason, None)] if entry.reason else []
        elif entry.kind == kind.EXPIRE:
            title = _("Points expired")
            details = [(_("Points expire %(months)s months after they were earned.")
                        % {"months": settings.LOYALTY_POINTS_EXPIRY_MONTHS}, None)]
        elif entry.kind == kind.TRANSFER:
            title = _("Points moved from a merged customer account")
        else:
            title = entry.reason or entry.get_kind_display()
        lines.append(LedgerLine(entry=entry, title=title, details=details, purchase=purchase, voucher=voucher))
    return lines


def pending_purchases(member: Member):
    """Purchases whose points are held until the return window ends."""
    from rewards.models import Purchase

    return list(Purchase.objects.filter(member=member, points_pending__gt=0).select_related("store")
                .order_by("available_at", "id"))


def vouchers_of(member: Member):
    from rewards.models import Redemption

    return Redemption.objects.filter(member_id__in=_same_person(member)).select_related("reward")


def consent_pending_for_token(token: str):
    """The e-mail consent waiting for this double opt-in token, if it is still the latest word."""
    from .models import ConsentRecord
    from .services import consent_current

    if not token:
        return None
    pending = (ConsentRecord.objects.filter(confirmation_token=token, confirmed_at__isnull=True)
               .select_related("member").first())
    if pending is None or consent_current(pending.member)[pending.purpose] != pending:
        return None
    return pending


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

    from rewards.models import EarningRule

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
        conditions.append(_("purchases of at least %(amount)s") % {"amount": number_format(rule.min_amount, 2)})
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
    from rewards.models import CashbackProgram, EarningRule, Reward, StampCardProgram

    now = timezone.now()
    rules = list(EarningRule.objects.in_force(now).select_related("tier").prefetch_related("stores"))
    base = EarningRule.Effect.BASE_RATE
    rewards = list(Reward.objects.filter(active=True, in_catalogue=True).select_related("min_tier"))
    return {
        "base_rules": [_rule_terms(rule) for rule in rules if rule.effect == base],
        "promotions": [_rule_terms(rule) for rule in rules if rule.effect != base],
        "tiers": list(Tier.objects.order_by("rank")),
        "tier_window_days": settings.LOYALTY_TIER_WINDOW_DAYS,
        "expiry_months": settings.LOYALTY_POINTS_EXPIRY_MONTHS,
        "expiry_warning_days": settings.LOYALTY_EXPIRY_WARNING_DAYS,
        "return_window_days": settings.LOYALTY_RETURN_WINDOW_DAYS,
        "refund_expired_vouchers": settings.LOYALTY_REFUND_EXPIRED_VOUCHERS,
        "voucher_days": sorted({reward.voucher_valid_days for reward in rewards}),
        "rewards_with_tier": [reward for reward in rewards if reward.min_tier_id],
        "rewards_with_limit": [reward for reward in rewards if reward.limit_per_member],
        "stamp_programs": list(StampCardProgram.objects.filter(active=True).select_related("reward")),
        "cashback": CashbackProgram.objects.filter(active=True).select_related("reward").first(),
        "as_of": now,
    }


# --- Partner API: which members a partner may see and change ----------------------------------
# A partner sees a member it is related to (the member enrolled or bought there: PartnerRelation)
# or one who is present: the request carries what a till scans or the member shows (card number,
# customer number, a member code from the portal). Both are conditions on the member row, in ORM
# and in SQL form (the balance answer is one raw statement), so every read and write of the API
# filters by the same rule, in the statement that finds the member.

PRESENCE_FIELDS = ("card_number", "customer_number", "member_code")


@dataclass(frozen=True)
class PartnerReach:
    """Whose relations count for a caller: the partner's, or only those at some of its stores (a
    store-restricted API key). `store_ids` None: all of them, also those without a store."""

    partner_id: int
    store_ids: frozenset[int] | None = None

    def relations(self) -> QuerySet[PartnerRelation]:
        relations = PartnerRelation.objects.filter(partner_id=self.partner_id)
        if self.store_ids is not None:
            relations = relations.filter(store_id__in=sorted(self.store_ids))
        return relations

    def related(self) -> Exists:
        """True for the member of the outer query (its pk) if the caller is related to them: one
        probe of the relation_unique index (member, partner, store)."""
        return Exists(self.relations().filter(member_id=OuterRef("pk")))

    def related_sql(self, alias: str = "m") -> tuple[str, dict]:
        params: dict = {"reach_partner": self.partner_id}
        stores = ""
        if self.store_ids is not None:
            names = [f"reach_store{n}" for n in range(len(self.store_ids))]
            params.update(zip(names, sorted(self.store_ids), strict=True))
            stores = f" AND r.store_id IN ({', '.join(f'%({name})s' for name in names)})" if names else " AND 1 = 0"
        sql = (f"EXISTS (SELECT 1 FROM {PartnerRelation._meta.db_table} r WHERE r.member_id = {alias}.id "  # noqa: S608 - table names and placeholders only
               f"AND r.partner_id = %(reach_partner)s{stores})")
        return sql, params


def members_visible_to(reach: PartnerReach) -> QuerySet[Member]:
    """The members a partner (or a store-restricted key) may see without their presence."""
    return Member.objects.exclude(status=Member.Status.ERASED).filter(reach.related())


@dataclass(frozen=True)
class Presence:
    """Proof in a request that the member is at the partner's till or shop right now."""

    field: str  # one of PRESENCE_FIELDS
    value: str

    def _code_hash(self) -> str | None:
        code = normalize_member_code(self.value)
        return hash_member_code(code) if code else None

    def matches(self) -> Q:
        """The condition on Member."""
        if self.field != "member_code":
            return Q(**{self.field: self.value.strip()})
        code_hash = self._code_hash()
        if code_hash is None:
            return Q(pk__in=[])
        return Q(Exists(MemberCode.objects.filter(member_id=OuterRef("pk"), code_hash=code_hash,
                                                  purpose=MemberCode.Purpose.PRESENCE,
                                                  expires_at__gt=timezone.now())))

    def sql(self, alias: str = "m") -> tuple[str, dict]:
        if self.field != "member_code":
            column = {"card_number": "card_number", "customer_number": "customer_number"}[self.field]
            return f"{alias}.{column} = %(presence)s", {"presence": self.value.strip()}
        code_hash = self._code_hash()
        if code_hash is None:
            return "1 = 0", {}
        return (f"EXISTS (SELECT 1 FROM {MemberCode._meta.db_table} c WHERE c.member_id = {alias}.id "  # noqa: S608
                "AND c.code_hash = %(presence)s AND c.purpose = %(presence_purpose)s AND c.expires_at > %(now)s)",
                {"presence": code_hash, "presence_purpose": MemberCode.Purpose.PRESENCE, "now": timezone.now()})

