"""Segment conditions: a whitelist of fields and operators compiled into ORM `Q` objects.

A condition is (field, operator, value, days). Only the fields in FIELDS exist, each with the
operators it allows and a compiler that turns a parsed value into a `Q`. Values are parsed
(numbers, dates, lists of known codes) before they reach the ORM, and the ORM passes them as
query parameters: a segment never puts user text into SQL.

Speed at a million members (see bench/segment_bench.py):
- member columns first: tier, balance, country, language, birth month, join date and the
  rolling statistics (`last_purchase_at`, `purchases_12m`, `spend_12m`, `lifetime_spend`) kept
  by the purchase service. "In the last 12 months" (no period given) reads those columns.
- purchase conditions with a period read rollups that PostgreSQL triggers keep in the
  purchase's own transaction (rewards migration 0016): counts, spend and average order sum the
  member's whole months (rewards.MemberMonth) plus the purchases of the cut first month
  (campaigns.purchase_periods), `id IN (SELECT member_id … GROUP BY … HAVING …)`; "bought a
  category" compares the member's latest purchase of it (rewards.MemberCategory) with the
  period's start; "bought in a store" is an index-only range scan (purchase_store_time). When a
  member without any purchase would match (e.g. "at most 2 purchases"), the compiler excludes
  the members who fail instead, so members without purchases are counted correctly.
- consent is "an effective grant with no later record for that purpose": EXISTS plus NOT
  EXISTS, again joins rather than a subquery per member.
"""

from __future__ import annotations

import operator as op
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db.models import Case, DecimalField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.validators import EARLIEST_BIRTH_DATE as EARLIEST_DATE
from core.validators import LATEST_DATE
from members.models import ConsentRecord, ConsentState, Member, Tag, Tier

from .errors import InvalidCondition
from .purchase_periods import members_sql

DEFAULT_PERIOD_DAYS = 365

# --- Operators ----------------------------------------------------------------------------------

OPERATORS = {
    "eq": gettext_lazy("is"),
    "ne": gettext_lazy("is not"),
    "gt": gettext_lazy("more than"),
    "gte": gettext_lazy("at least"),
    "lt": gettext_lazy("less than"),
    "lte": gettext_lazy("at most"),
    "between": gettext_lazy("between (from,to)"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "all": gettext_lazy("has all of"),
    "before": gettext_lazy("before"),
    "after": gettext_lazy("on or after"),
    "given": gettext_lazy("given"),
    "not_given": gettext_lazy("not given"),
    "yes": gettext_lazy("yes"),
    "no": gettext_lazy("no"),
}
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
LIST_OPS = ("in", "not_in")
DATE_OPS = ("before", "after", "between")
COMPARE: dict[str, Callable] = {"eq": op.eq, "ne": op.ne, "gt": op.gt, "gte": op.ge, "lt": op.lt, "lte": op.le}


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: str = ""
    days: int | None = None
    group: int = 1


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    operators: tuple[str, ...]
    compile: Callable[[Condition, object, datetime], Q]  # (condition, parsed value, now) -> Q
    parse: Callable[[Condition], object]
    help: str = ""
    uses_period: bool = False


def _fail(condition: Condition, detail: str) -> InvalidCondition:
    label = FIELDS[condition.field].label if condition.field in FIELDS else condition.field
    return InvalidCondition(detail=f"{label}: {detail}")


# --- Value parsers -------------------------------------------------------------------------------

def _items(condition: Condition) -> list[str]:
    items = [item.strip() for item in condition.value.split(",") if item.strip()]
    if not items:
        raise _fail(condition, _("give at least one value"))
    return items


# Bounds on values: beyond them a number or date breaks the arithmetic (timedelta, time zones),
# the column types (numeric(14,2), integer) or the comparison itself (NaN), and the segment could
# no longer be opened. Generous: no real condition comes near them.
MAX_WHOLE_NUMBER = 1_000_000_000  # points, counts (an integer column holds up to 2,147,483,647)
MAX_DAYS = 36_600  # a hundred years
MAX_AMOUNT = Decimal("999999999999.99")  # what numeric(14,2) holds
CENT = Decimal("0.01")


def _number(condition: Condition, text: str, kind=int, maximum=None):
    try:
        value = kind(text.strip().replace(" ", ""))
    except (ValueError, ArithmeticError):
        raise _fail(condition, _("%(value)s is not a number") % {"value": text}) from None
    if isinstance(value, Decimal):
        if not value.is_finite():  # NaN, sNaN and Infinity parse as Decimals, and NaN compares with nothing
            raise _fail(condition, _("%(value)s is not a number") % {"value": text})
        if value.copy_abs() > MAX_AMOUNT or value != value.quantize(CENT, rounding=ROUND_DOWN):
            raise _fail(condition, _("amounts go up to %(maximum)s with at most two decimal places") % {
                "maximum": MAX_AMOUNT})
        value = value.quantize(CENT)  # 1E+2 → 100.00: what the column compares with
    if value < 0:
        raise _fail(condition, _("numbers cannot be negative"))
    maximum = maximum if maximum is not None else (MAX_AMOUNT if kind is Decimal else MAX_WHOLE_NUMBER)
    if value > maximum:
        raise _fail(condition, _("the largest number here is %(maximum)s") % {"maximum": maximum})
    return value


def _parse_number(kind=int, maximum=None) -> Callable[[Condition], object]:
    def parse(condition: Condition):
        if condition.operator == "between":
            parts = condition.value.split(",")
            if len(parts) != 2:
                raise _fail(condition, _("write a range as 'from,to'"))
            low, high = (_number(condition, part, kind, maximum) for part in parts)
            if low > high:
                raise _fail(condition, _("the range must go from low to high"))
            return (low, high)
        return _number(condition, condition.value, kind, maximum)

    return parse


def _parse_date_value(condition: Condition, text: str) -> date:
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise _fail(condition, _("%(value)s is not a date (YYYY-MM-DD)") % {"value": text}) from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:  # the year 9999 overflows a day later, 0001 in UTC
        raise _fail(condition, _("dates lie between %(earliest)s and %(latest)s") % {
            "earliest": EARLIEST_DATE.isoformat(), "latest": LATEST_DATE.isoformat()})
    return value


def _parse_dates(condition: Condition):
    if condition.operator == "between":
        parts = condition.value.split(",")
        if len(parts) != 2:
            raise _fail(condition, _("write a range as 'from,to'"))
        low, high = (_parse_date_value(condition, part) for part in parts)
        if low > high:
            raise _fail(condition, _("the range must go from low to high"))
        return (low, high)
    return _parse_date_value(condition, condition.value)


def _parse_none(condition: Condition):
    return None


def _parse_codes(valid: Callable[[], Iterable[str]], *, upper: bool = True):
    def parse(condition: Condition) -> list[str]:
        items = [item.upper() if upper else item.lower() for item in _items(condition)]
        known = set(valid())
        unknown = [item for item in items if item not in known]
        if unknown:
            raise _fail(condition, _("unknown value(s): %(values)s") % {"values": ", ".join(unknown)})
        return items

    return parse


def _parse_months(condition: Condition) -> list[int]:
    months = [_number(condition, item) for item in _items(condition)]
    if any(month < 1 or month > 12 for month in months):
        raise _fail(condition, _("months are 1 to 12"))
    return months


def _parse_tiers(condition: Condition) -> list[int]:
    """Tier names (German or English) or ranks; returns ranks."""
    tiers = list(Tier.objects.all())
    by_key = {}
    for tier in tiers:
        by_key[str(tier.rank)] = tier.rank
        by_key[tier.name_de.casefold()] = tier.rank
        if tier.name_en:
            by_key[tier.name_en.casefold()] = tier.rank
    ranks = []
    for item in _items(condition):
        if item.casefold() not in by_key:
            raise _fail(condition, _("unknown tier %(tier)s") % {"tier": item})
        ranks.append(by_key[item.casefold()])
    if condition.operator in ("gte", "lte") and len(ranks) != 1:
        raise _fail(condition, _("give one tier"))
    return ranks


def _parse_tags(condition: Condition) -> list[int]:
    names = _items(condition)
    found = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    unknown = [name for name in names if name not in found]
    if unknown:
        raise _fail(condition, _("unknown tag(s): %(values)s") % {"values": ", ".join(unknown)})
    return [found[name] for name in names]


def _parse_stores(condition: Condition) -> list[int]:
    from partners.models import Store

    codes = _items(condition)
    found = {}
    for code, pk in Store.objects.filter(code__in=codes).values_list("code", "pk"):
        found.setdefault(code, []).append(pk)
    unknown = [code for code in codes if code not in found]
    if unknown:
        raise _fail(condition, _("unknown store code(s): %(values)s") % {"values": ", ".join(unknown)})
    return [pk for code in codes for pk in found[code]]


def _parse_purpose(condition: Condition) -> str:
    purpose = condition.value.strip().lower() or ConsentRecord.Purpose.EMAIL
    if purpose not in ConsentRecord.Purpose.values:
        raise _fail(condition, _("the purpose is one of %(values)s") % {
            "values": ", ".join(ConsentRecord.Purpose.values)})
    return purpose


# --- Compilers -----------------------------------------------------------------------------------

def _number_q(column: str, condition: Condition, value) -> Q:
    if condition.operator == "between":
        return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
    if condition.operator == "ne":
        return ~Q(**{column: value})
    lookup = "" if condition.operator == "eq" else f"__{condition.operator}"
    return Q(**{f"{column}{lookup}": value})


def _since(condition: Condition, now: datetime) -> datetime:
    return now - timedelta(days=condition.days or DEFAULT_PERIOD_DAYS)


def _uses_columns(condition: Condition) -> bool:
    """Without a period (or with exactly a year) the member's rolling 12-month columns answer."""
    return condition.days in (None, DEFAULT_PERIOD_DAYS)


def eur_amount():
    net = F("amount") - F("returned_amount")
    return Case(
        *[When(currency=code, then=net * Decimal(str(rate)))
          for code, rate in settings.LOYALTY_CURRENCY_TO_EUR.items()],
        default=net, output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def _aggregate_q(condition: Condition, value, now: datetime, measure: str, *, empty) -> Q:
    """Members whose purchases in the period satisfy the condition (campaigns.purchase_periods:
    whole months from the rollup, the cut month's rest from the purchases).

    `empty` is the measure of a member without purchases (0 for counts and sums, None for an
    average, which then never matches)."""
    since = _since(condition, now)
    if empty is not None and _matches(condition, value, empty):
        # A member without purchases matches: exclude the members who fail instead.
        failing = members_sql(since, measure, condition.operator, value, negate=True)
        return ~Q(pk__in=RawSQL(*failing))  # noqa: S611 - parsed values, passed as parameters
    return Q(pk__in=RawSQL(*members_sql(since, measure, condition.operator, value)))  # noqa: S611 - as above


def _matches(condition: Condition, value, number) -> bool:
    if condition.operator == "between":
        return value[0] <= number <= value[1]
    return COMPARE[condition.operator](number, value)


def compile_tier(condition: Condition, ranks, now) -> Q:
    if condition.operator in ("gte", "lte"):
        compare = op.ge if condition.operator == "gte" else op.le
        ids = [tier.pk for tier in Tier.objects.all() if compare(tier.rank, ranks[0])]
    else:
        ids = list(Tier.objects.filter(rank__in=ranks).values_list("pk", flat=True))
    q = Q(tier_id__in=ids)
    return (~q | Q(tier__isnull=True)) if condition.operator == "not_in" else q


def compile_balance(condition: Condition, value, now) -> Q:
    return _number_q("points_balance", condition, value)


def compile_days_since_purchase(condition: Condition, value, now) -> Q:
    """Recency. Members who never bought have no recency: see the "has purchased" field."""
    def cutoff(days):
        return now - timedelta(days=days)

    operator_ = condition.operator
    if operator_ == "between":
        return Q(last_purchase_at__lte=cutoff(value[0]), last_purchase_at__gte=cutoff(value[1]))
    flipped = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}  # more days ago = earlier time
    if operator_ in flipped:
        return Q(**{f"last_purchase_at__{flipped[operator_]}": cutoff(value)})
    day_start, day_end = cutoff(value + 1), cutoff(value)
    same_day = Q(last_purchase_at__gt=day_start, last_purchase_at__lte=day_end)
    return same_day if operator_ == "eq" else (~same_day & Q(last_purchase_at__isnull=False))


def compile_has_purchased(condition: Condition, value, now) -> Q:
    return Q(last_purchase_at__isnull=condition.operator == "no")


def compile_purchases(condition: Condition, value, now) -> Q:
    if _uses_columns(condition):
        return _number_q("purchases_12m", condition, value)
    return _aggregate_q(condition, value, now, "purchases", empty=0)


def compile_spend(condition: Condition, value, now) -> Q:
    if _uses_columns(condition):
        return _number_q("spend_12m", condition, value)
    return _aggregate_q(condition, value, now, "spend", empty=Decimal(0))


def compile_lifetime_spend(condition: Condition, value, now) -> Q:
    return _number_q("lifetime_spend", condition, value)


def compile_average_order(condition: Condition, value, now) -> Q:
    if _uses_columns(condition):
        # spend / purchases compared without dividing: spend >= x * purchases (no annotation,
        # no division by zero), only for members who bought at all.
        bought = Q(purchases_12m__gt=0)
        operator_ = condition.operator
        if operator_ == "between":
            return bought & Q(spend_12m__gte=F("purchases_12m") * value[0],
                              spend_12m__lte=F("purchases_12m") * value[1])
        if operator_ == "ne":
            return bought & ~Q(spend_12m=F("purchases_12m") * value)
        lookup = "" if operator_ == "eq" else f"__{operator_}"
        return bought & Q(**{f"spend_12m{lookup}": F("purchases_12m") * value})
    return _aggregate_q(condition, value, now, "average_order", empty=None)


def compile_category(condition: Condition, categories, now) -> Q:
    """From the member's latest purchase per category (rewards.MemberCategory, kept by triggers):
    a member bought the category since a moment exactly when the latest purchase is not older."""
    from rewards.models import MemberCategory

    bought = Exists(MemberCategory.objects.filter(
        member=OuterRef("pk"), category__in=[Upper(Value(category)) for category in categories],
        last_bought_at__gte=_since(condition, now)))
    return ~Q(bought) if condition.operator == "not_in" else Q(bought)


def compile_store(condition: Condition, store_ids, now) -> Q:
    from rewards.models import Purchase

    visited = Exists(Purchase.objects.filter(member=OuterRef("pk"), store_id__in=store_ids,
                                             occurred_at__gte=_since(condition, now)))
    return ~Q(visited) if condition.operator == "not_in" else Q(visited)


def _in_q(column: str):
    def compile_(condition: Condition, values, now) -> Q:
        q = Q(**{f"{column}__in": values})
        return ~q if condition.operator == "not_in" else q

    return compile_


def compile_birthday_month(condition: Condition, months, now) -> Q:
    q = Q(birth_date__month__in=months)
    return (~q & Q(birth_date__isnull=False)) if condition.operator == "not_in" else q


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def compile_joined(condition: Condition, value, now) -> Q:
    if condition.operator == "between":
        return Q(joined_at__gte=_local_midnight(value[0]), joined_at__lt=_local_midnight(value[1] + timedelta(days=1)))
    if condition.operator == "before":
        return Q(joined_at__lt=_local_midnight(value))
    return Q(joined_at__gte=_local_midnight(value))


def compile_days_since_joined(condition: Condition, value, now) -> Q:
    def cutoff(days):
        return now - timedelta(days=days)

    if condition.operator == "between":
        return Q(joined_at__lte=cutoff(value[0]), joined_at__gte=cutoff(value[1]))
    flipped = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}
    if condition.operator in flipped:
        return Q(**{f"joined_at__{flipped[condition.operator]}": cutoff(value)})
    same_day = Q(joined_at__gt=cutoff(value + 1), joined_at__lte=cutoff(value))
    return same_day if condition.operator == "eq" else ~same_day


def compile_tags(condition: Condition, tag_ids, now) -> Q:
    through = Member.tags.through

    def has(ids):
        return Exists(through.objects.filter(member_id=OuterRef("pk"), tag_id__in=ids))

    if condition.operator == "all":
        q = Q()
        for tag_id in tag_ids:
            q &= Q(has([tag_id]))
        return q
    return ~Q(has(tag_ids)) if condition.operator == "not_in" else Q(has(tag_ids))


def consent_effective_q(purpose: str) -> Q:
    """The member's latest record for `purpose` is an effective grant (for e-mail: confirmed
    by double opt-in) — ConsentRecord.is_effective, as the triggers keep it in ConsentState."""
    return Q(Exists(ConsentState.objects.filter(member_id=OuterRef("pk"), purpose=purpose, effective=True)))


def compile_consent(condition: Condition, purpose, now) -> Q:
    q = consent_effective_q(purpose)
    return ~q if condition.operator == "not_given" else q


# --- The whitelist -------------------------------------------------------------------------------

def _country_codes() -> Iterable[str]:
    import string

    # Any two-letter ISO code: the column holds ISO 3166 codes, and an unused one simply matches nobody.
    letters = string.ascii_uppercase
    return {a + b for a in letters for b in letters}


def _languages() -> Iterable[str]:
    return Member.Language.values


FIELDS: dict[str, Field] = {field.key: field for field in [
    Field("tier", gettext_lazy("tier"), ("in", "not_in", "gte", "lte"), compile_tier, _parse_tiers,
          gettext_lazy("Tier names or ranks, e.g. 'Gold,Platin'; 'at least Silber'.")),
    Field("points_balance", gettext_lazy("points balance"), NUMBER_OPS, compile_balance, _parse_number(int)),
    Field("days_since_purchase", gettext_lazy("days since the last purchase"), NUMBER_OPS,
          compile_days_since_purchase, _parse_number(int, MAX_DAYS),
          gettext_lazy("Members who never bought are not included; see 'has purchased'.")),
    Field("has_purchased", gettext_lazy("has purchased"), ("yes", "no"), compile_has_purchased, _parse_none),
    Field("purchases", gettext_lazy("number of purchases in the period"), NUMBER_OPS, compile_purchases,
          _parse_number(int), uses_period=True),
    Field("spend", gettext_lazy("spend in the period (EUR)"), NUMBER_OPS, compile_spend, _parse_number(Decimal),
          uses_period=True),
    Field("average_order", gettext_lazy("average order value in the period (EUR)"), NUMBER_OPS,
          compile_average_order, _parse_number(Decimal), uses_period=True),
    Field("lifetime_spend", gettext_lazy("lifetime spend (EUR)"), NUMBER_OPS, compile_lifetime_spend,
          _parse_number(Decimal)),
    Field("category", gettext_lazy("bought a product category in the period"), LIST_OPS, compile_category,
          lambda condition: _items(condition), gettext_lazy("Category names, e.g. 'Kaffee,Wein'."),
          uses_period=True),
    Field("store", gettext_lazy("bought in a store in the period"), LIST_OPS, compile_store, _parse_stores,
          gettext_lazy("Store codes, e.g. 'BER-01,WEB'."), uses_period=True),
    Field("country", gettext_lazy("country"), LIST_OPS, _in_q("country"), _parse_codes(_country_codes),
          gettext_lazy("ISO codes, e.g. 'DE,AT'.")),
    Field("language", gettext_lazy("language"), LIST_OPS, _in_q("language"), _parse_codes(_languages, upper=False),
          gettext_lazy("'de' or 'en'.")),
    Field("birthday_month", gettext_lazy("birthday month"), LIST_OPS, compile_birthday_month, _parse_months,
          gettext_lazy("Month numbers, e.g. '12' or '6,7,8'.")),
    Field("joined_at", gettext_lazy("joined on"), DATE_OPS, compile_joined, _parse_dates,
          gettext_lazy("A date YYYY-MM-DD, or 'from,to'.")),
    Field("days_since_joined", gettext_lazy("days since joining"), NUMBER_OPS, compile_days_since_joined,
          _parse_number(int, MAX_DAYS)),
    Field("tags", gettext_lazy("tags"), ("in", "not_in", "all"), compile_tags, _parse_tags,
          gettext_lazy("Tag names, comma-separated.")),
    Field("consent", gettext_lazy("marketing consent"), ("given", "not_given"), compile_consent, _parse_purpose,
          gettext_lazy("The purpose: email (confirmed by double opt-in), sms or personalised.")),
]}

FIELD_CHOICES = [(key, field.label) for key, field in FIELDS.items()]
OPERATOR_CHOICES = list(OPERATORS.items())
# operator -> the fields it fits: the console offers an operator only with those fields
FIELDS_BY_OPERATOR = {name: [key for key, field in FIELDS.items() if name in field.operators] for name in OPERATORS}


def condition_label(field: str, operator: str, value: str, days: int | None) -> str:
    """A condition in words, as the console shows it: "tier is one of Gold (90 days)"."""
    label = FIELDS[field].label if field in FIELDS else field
    text = f"{label} {OPERATORS.get(operator, operator)} {value}".strip()
    if days:
        text += " " + _("(%(days)s days)") % {"days": days}
    return text


def condition_validate(condition: Condition) -> object:
    """Check a condition against the whitelist and return its parsed value."""
    field = FIELDS.get(condition.field)
    if field is None:
        raise InvalidCondition(detail=_("unknown field %(field)s") % {"field": condition.field})
    if condition.operator not in field.operators:
        allowed = ", ".join(str(OPERATORS[name]) for name in field.operators)
        raise _fail(condition, _("the operator must be one of: %(allowed)s") % {"allowed": allowed})
    if condition.days is not None and not field.uses_period:
        raise _fail(condition, _("this field has no period"))
    if condition.days is not None and not 1 <= condition.days <= 3660:
        raise _fail(condition, _("the period is 1 to 3660 days"))
    return field.parse(condition)


def compile_condition(condition: Condition, *, now: datetime | None = None) -> Q:
    value = condition_validate(condition)
    try:
        return FIELDS[condition.field].compile(condition, value, now or timezone.now())
    except (OverflowError, ArithmeticError, ValueError):
        # The parsers' bounds should leave nothing here; if a value still breaks date or number
        # arithmetic, the segment shows an error instead of failing the page.
        raise _fail(condition, _("the value is out of range")) from None


def compile_conditions(conditions: Iterable[Condition], *, now: datetime | None = None) -> Q:
    """OR over the groups, AND within a group. No conditions: everybody (Q())."""
    now = now or timezone.now()
    groups: dict[int, list[Condition]] = defaultdict(list)
    for condition in conditions:
        groups[condition.group].append(condition)
    combined: Q | None = None
    for group in sorted(groups):
        group_q = Q()
        for condition in groups[group]:
            group_q &= compile_condition(condition, now=now)
        combined = group_q if combined is None else combined | group_q
    return combined if combined is not None else Q()


def conditions_of(segment) -> list[Condition]:
    return [Condition(field=row.field, operator=row.operator, value=row.value, days=row.days, group=row.group)
            for row in segment.conditions.all()]


def segment_queryset(segment, *, now: datetime | None = None) -> QuerySet[Member]:
    """Active members matching the segment (all active members for no segment)."""
    members = Member.objects.active()
    if segment is None:
        return members
    return members.filter(compile_conditions(conditions_of(segment), now=now))


def members_from_definition(definition: list[dict], *, now: datetime | None = None) -> QuerySet[Member]:
    """The same for a JSON definition: [{"field", "operator", "value", "days", "group"}, …]."""
    conditions = []
    for item in definition:
        if not isinstance(item, dict):
            raise InvalidCondition(detail=_("each condition is an object"))
        unknown = set(item) - {"field", "operator", "value", "days", "group"}
        if unknown:
            raise InvalidCondition(detail=_("unknown keys %(keys)s") % {"keys": ", ".join(sorted(unknown))})
        conditions.append(Condition(field=str(item.get("field", "")), operator=str(item.get("operator", "")),
                                    value=str(item.get("value", "")), days=item.get("days"),
                                    group=int(item.get("group", 1))))
    return Member.objects.active().filter(compile_conditions(conditions, now=now))
