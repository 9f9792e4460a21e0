"""The KPI dashboard on the console's start page.

All figures are computed by a beat job (`refresh_dashboard`, every 15 minutes) and kept in the
cache, so the page costs one cache read whatever the size of the ledger; the page says when
they were computed. Definitions, for finance and marketing alike:

- active member: a purchase in the last 90 days;
- repeat-purchase rate: of the members who bought in the period, the share who bought twice or more;
- average order value (AOV): member revenue in EUR (returns deducted) / member purchases;
- churn: of the members who bought in the period before, the share who did not buy in this one;
- estimated customer lifetime value (CLV): AOV × purchases per buying member per year × expected
  lifetime in years (1 / yearly churn, at most 10 years);
- points issued: credits (earned, bonus, positive adjustments); redeemed: spent on vouchers
  net of refunds; expired: breakage; redemption rate: redeemed / issued;
- outstanding liability: unspent, unexpired points × LOYALTY_POINT_VALUE_EUR, by the month in
  which they would expire (oldest points are spent first), in EUR and in CHF;
- campaign uplift: over the campaigns started in the period that held out a control group, the
  share of messaged members who bought within each campaign's attribution window minus the share
  of held-out members who did (percentage points, pooled);
- referral conversion: of the referrals attributed in the period, the share qualified or rewarded;
- NPS: % promoters (9-10) − % detractors (0-6) of the NPS answers given in the period.

- participation rate: member purchases / all receipts, over the store days for which tills
  reported their day's receipt count (POST /api/v1/store-days/); empty until a till reports.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.db_router import read_alias, reading_replica
from loyalty_site import formatting

CACHE_KEY = "loyalty:dashboard"
PERIODS = (30, 90, 365)
HISTORY_DAYS = 2 * 365 + 30


# --- Computing (the beat job) ----------------------------------------------------------------

@reading_replica()  # minutes of figures over the whole ledger: the replica's work, if there is one
def compute_figures(*, now: datetime | None = None) -> dict:
    from members.models import Member

    now = now or timezone.now()
    since = now - timedelta(days=HISTORY_DAYS)
    figures = {
        "computed_at": now.isoformat(),
        "members_total": Member.objects.exclude(status__in=["merged", "erased"]).count(),
        "active_members": Member.objects.filter(last_purchase_at__gte=now - timedelta(days=90)).count(),
        "daily": _daily_series(since),
        "periods": {str(days): _period_figures(now, days) for days in PERIODS},
        "liability": _liability_by_month(now),
        "programme": {str(days): {"current": _programme_figures(now - timedelta(days=days), now),
                                  "previous": _programme_figures(now - timedelta(days=2 * days),
                                                                 now - timedelta(days=days))}
                      for days in PERIODS},
        "nps_by_month": _nps_by_month(now),
    }
    cache.set(CACHE_KEY, figures, timeout=None)
    return figures


def _by_day(queryset, field: str, **aggregates) -> dict[str, dict]:
    rows = queryset.annotate(day=TruncDate(field)).values("day").annotate(**aggregates).order_by("day")
    return {row["day"].isoformat(): {key: _plain(row[key]) for key in aggregates} for row in rows}


def _plain(value):
    return float(value) if isinstance(value, Decimal) else (value or 0)


def _daily_series(since: datetime) -> dict[str, dict]:
    from members.models import Member
    from rewards.models import PointEntry, Purchase

    series: dict[str, dict] = defaultdict(dict)
    for day, values in _by_day(Member.objects.filter(joined_at__gte=since), "joined_at",
                               enrolments=Count("pk")).items():
        series[day].update(values)
    for day, values in _by_day(Purchase.objects.filter(occurred_at__gte=since), "occurred_at",
                               purchases=Count("pk"), revenue=Sum(_eur(F("amount") - F("returned_amount")))).items():
        series[day].update(values)
    entries = PointEntry.objects.filter(created_at__gte=since)
    for day, values in _by_day(entries, "created_at",
                               issued=Sum("points", filter=Q(points__gt=0, kind__in=["earn", "bonus", "adjust"])),
                               redeemed=Sum("points", filter=Q(kind__in=["redeem", "refund"])),
                               expired=Sum("points", filter=Q(kind="expire"))).items():
        series[day].update({"issued": values["issued"], "redeemed": -values["redeemed"],
                            "expired": -values["expired"]})
    return dict(sorted(series.items()))


def _eur(amount):
    from django.db.models import Case, DecimalField, When

    rates = settings.LOYALTY_CURRENCY_TO_EUR
    return Case(*[When(currency=code, then=amount * Decimal(str(rate))) for code, rate in rates.items()],
                default=amount, output_field=DecimalField(max_digits=14, decimal_places=2))


def _period_figures(now: datetime, days: int) -> dict:
    from rewards.models import Purchase

    start, previous_start = now - timedelta(days=days), now - timedelta(days=2 * days)
    current = Purchase.objects.filter(occurred_at__gt=start, occurred_at__lte=now)
    buyers = current.values("member_id").annotate(n=Count("pk"))
    buying, repeat = buyers.count(), buyers.filter(n__gte=2).count()
    # Counted in the database: the previous period's buyers can be a million ids.
    before = Purchase.objects.filter(occurred_at__gt=previous_start, occurred_at__lte=start).values("member_id")
    before_count = before.distinct().count()
    still = current.filter(member_id__in=before).values("member_id").distinct().count() if before_count else 0
    totals = current.aggregate(purchases=Count("pk"), revenue=Sum(_eur(F("amount") - F("returned_amount"))))
    return {
        "buying_members": buying,
        "repeat_rate": repeat / buying if buying else None,
        "churn": (before_count - still) / before_count if before_count else None,
        "purchases": totals["purchases"],
        "revenue": float(totals["revenue"] or 0),
    }


CAMPAIGNS_MEASURED = 100  # the latest campaigns of a period; each costs one grouped query


def _programme_figures(start: datetime, end: datetime) -> dict:
    return {"campaign_uplift": _campaign_uplift(start, end), "referral_conversion": _referral_conversion(start, end),
            "nps": _nps(start, end), "participation": _participation(start, end)}


def _participation(start: datetime, end: datetime) -> float | None:
    """Member purchases / all receipts, over the store days the tills reported."""
    from django.db.models import Exists, OuterRef
    from django.db.models.functions import TruncDate

    from rewards.models import Purchase, StoreDayTotal

    first, last = timezone.localdate(start) + timedelta(days=1), timezone.localdate(end)
    reported = StoreDayTotal.objects.filter(day__gte=first, day__lte=last)
    receipts = reported.aggregate(total=Sum("receipts"))["total"]
    if not receipts:
        return None
    members = (Purchase.objects.filter(occurred_at__gte=start - timedelta(days=1), occurred_at__lte=end)
               .annotate(local_day=TruncDate("occurred_at"))
               .filter(Exists(reported.filter(store=OuterRef("store_id"), day=OuterRef("local_day")))).count())
    return min(1.0, members / receipts)


def _campaign_uplift(start: datetime, end: datetime) -> float | None:
    from campaigns.experiment import uplift
    from campaigns.models import Campaign
    from campaigns.selectors import campaign_results

    treated = treated_conversions = control = control_conversions = 0
    campaigns = Campaign.objects.filter(started_at__gt=start, started_at__lte=end, holdout_percent__gt=0)
    for campaign in campaigns.order_by("-started_at")[:CAMPAIGNS_MEASURED]:
        results = campaign_results(campaign)
        if results.control is None or results.treatment is None:
            continue
        treated += results.treatment.size
        treated_conversions += results.treatment.conversions
        control += results.control.size
        control_conversions += results.control.conversions
    measured = uplift(conversions=treated_conversions, size=treated, control_conversions=control_conversions,
                      control_size=control)
    return measured.difference if measured else None


def _referral_conversion(start: datetime, end: datetime) -> float | None:
    from referrals.models import Referral

    counts = Referral.objects.filter(created_at__gt=start, created_at__lte=end).aggregate(
        total=Count("pk"),
        converted=Count("pk", filter=Q(status__in=[Referral.Status.QUALIFIED, Referral.Status.REWARDED])))
    return counts["converted"] / counts["total"] if counts["total"] else None


def _nps(start: datetime, end: datetime) -> float | None:
    from feedback import metrics
    from feedback.models import Response

    return metrics.nps(Response.objects.filter(created_at__gt=start, created_at__lte=end))


def _nps_by_month(now: datetime) -> list[tuple[str, float | None]]:
    from feedback import metrics
    from feedback.models import Response

    months = metrics.by_month(Response.objects.filter(created_at__gt=now - timedelta(days=365)), "nps")
    return [(month.strftime("%Y-%m"), None if summary.value is None else round(summary.value, 1))
            for month, summary in months]


_LIABILITY_SQL = """
    WITH debits AS (
        SELECT member_id, -sum(points) AS total FROM rewards_pointentry WHERE points < 0 GROUP BY member_id
    ), credits AS (
        SELECT e.member_id, e.expires_at, e.points,
               sum(e.points) OVER (PARTITION BY e.member_id ORDER BY e.expires_at, e.id) AS running
        FROM rewards_pointentry e WHERE e.points > 0 AND e.expires_at IS NOT NULL
    )
    SELECT date_trunc('month', c.expires_at AT TIME ZONE %s)::date AS month,
           sum(least(c.points, greatest(0, c.running - coalesce(d.total, 0))))
    FROM credits c LEFT JOIN debits d ON d.member_id = c.member_id
    WHERE c.expires_at > %s
    GROUP BY 1 ORDER BY 1
"""


def _liability_by_month(now: datetime) -> list[tuple[str, int]]:
    """Unspent points by the month they expire in. Debits (spent, reversed, expired) consume the
    oldest credits first, credits already past their date included."""
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(_LIABILITY_SQL, [settings.TIME_ZONE, now])
        return [(month.isoformat(), int(points or 0)) for month, points in cursor.fetchall() if points]


# --- Reading (the page) ----------------------------------------------------------------------

def cached_figures() -> dict | None:
    return cache.get(CACHE_KEY)


def figures_or_compute() -> dict:
    return cached_figures() or compute_figures()


def kpis(figures: dict, days: int) -> list[dict]:
    """The KPI cards for a period, each with the previous period for comparison."""
    daily = figures["daily"]
    end = _computed_day(figures)
    current = _sum_days(daily, end - timedelta(days=days - 1), end)
    previous = _sum_days(daily, end - timedelta(days=2 * days - 1), end - timedelta(days=days))
    period = figures["periods"].get(str(days)) or {}
    yearly = figures["periods"].get("365") or {}
    aov = current["revenue"] / current["purchases"] if current["purchases"] else None
    previous_aov = previous["revenue"] / previous["purchases"] if previous["purchases"] else None
    point_value = float(settings.LOYALTY_POINT_VALUE_EUR)
    liability_points = sum(points for _month, points in figures["liability"])
    chf_rate = float(settings.LOYALTY_CURRENCY_TO_EUR.get("CHF", 1))
    return [
        _card(_("Members"), figures["members_total"], None, "int"),
        _card(_("Active members (90 days)"), figures["active_members"], None, "int"),
        _card(_("Enrolments"), current["enrolments"], previous["enrolments"], "int"),
        _card(_("Repeat-purchase rate"), period.get("repeat_rate"), None, "percent"),
        _card(_("Average order value (EUR)"), aov, previous_aov, "money"),
        _card(_("Estimated CLV (EUR)"), _clv(yearly), None, "money"),
        _card(_("Churn"), period.get("churn"), None, "percent"),
        _card(_("Points issued"), current["issued"], previous["issued"], "int"),
        _card(_("Points redeemed"), current["redeemed"], previous["redeemed"], "int"),
        _card(_("Points expired (breakage)"), current["expired"], previous["expired"], "int"),
        _card(_("Redemption rate"), current["redeemed"] / current["issued"] if current["issued"] else None,
              previous["redeemed"] / previous["issued"] if previous["issued"] else None, "percent"),
        _card(_("Outstanding liability (EUR)"), liability_points * point_value, None, "money"),
        _card(_("Outstanding liability (CHF)"), liability_points * point_value / chf_rate, None, "money"),
        *_programme_cards(figures.get("programme", {}).get(str(days))),
    ]


def _programme_cards(programme: dict | None) -> list[dict]:
    current, previous = (programme or {}).get("current", {}), (programme or {}).get("previous", {})
    return [
        _card(_("Participation rate"), current.get("participation"), previous.get("participation"), "percent"),
        _card(_("Campaign uplift vs. holdout (percentage points)"), current.get("campaign_uplift"),
              None, "percent"),
        _card(_("Referral conversion"), current.get("referral_conversion"), previous.get("referral_conversion"),
              "percent"),
        _card(_("NPS"), _rounded(current.get("nps")), _rounded(previous.get("nps")), "int"),
    ]


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def _clv(yearly: dict) -> float | None:
    buyers, purchases, revenue, churn = (yearly.get("buying_members"), yearly.get("purchases"),
                                         yearly.get("revenue"), yearly.get("churn"))
    if not buyers or not purchases:
        return None
    lifetime_years = min(10.0, 1 / churn) if churn else 10.0
    return revenue / purchases * (purchases / buyers) * lifetime_years


def _sum_days(daily: dict, first: date, last: date) -> dict:
    keys = ("enrolments", "purchases", "revenue", "issued", "redeemed", "expired")
    total = dict.fromkeys(keys, 0)
    for day, values in daily.items():
        if first.isoformat() <= day <= last.isoformat():
            for key in keys:
                total[key] += values.get(key, 0) or 0
    return total


def _computed_day(figures: dict) -> date:
    """The local day the figures were computed on. The daily series is bucketed by local day
    (TruncDate in TIME_ZONE) and the stamp is UTC: its date is a day behind from local midnight
    until 01:00 (02:00 in summer)."""
    return timezone.localdate(datetime.fromisoformat(figures["computed_at"]))


def _card(label, value, previous, kind: str) -> dict:
    change = None
    if value is not None and previous:
        change = (value - previous) / abs(previous)
    return {"label": label, "value": value, "previous": previous, "change": change, "kind": kind}


def chart_series(figures: dict, days: int) -> dict[str, dict]:
    """Chart.js data for the period, day by day (week by week beyond 90 days)."""
    end = _computed_day(figures)
    step = 7 if days > 90 else 1
    labels, buckets = [], []
    start = end - timedelta(days=days - 1)
    while start <= end:
        bucket_end = min(end, start + timedelta(days=step - 1))
        labels.append(start.isoformat())
        buckets.append(_sum_days(figures["daily"], start, bucket_end))
        start = bucket_end + timedelta(days=1)

    def line(*keys):
        return {"labels": labels, "datasets": [
            {"label": str(_LABELS[key]), "data": [round(bucket[key], 2) for bucket in buckets]} for key in keys]}

    return {
        "enrolments": line("enrolments"),
        "revenue": line("revenue"),
        "points": line("issued", "redeemed", "expired"),
        "liability": {"labels": [month for month, _points in figures["liability"]],
                      "datasets": [{"label": str(_("Points")),
                                    "data": [points for _month, points in figures["liability"]]}]},
        "nps": {"labels": [month for month, _value in figures.get("nps_by_month", [])],
                "datasets": [{"label": str(_("NPS")),
                              "data": [value for _month, value in figures.get("nps_by_month", [])]}]},
    }


_LABELS = {"enrolments": _("Enrolments"), "revenue": _("Member revenue (EUR)"), "issued": _("Points issued"),
           "redeemed": _("Points redeemed"), "expired": _("Points expired")}


def chart_csv(chart: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["label", *[dataset["label"] for dataset in chart["datasets"]]])
    for index, label in enumerate(chart["labels"]):
        writer.writerow([label, *[dataset["data"][index] for dataset in chart["datasets"]]])
    return buffer.getvalue()


LIABILITY_MONTHS = 12


def liability_by_expiry_month(figures: dict, months: int = LIABILITY_MONTHS) -> list[dict]:
    """The points that expire in each of the next months (the current one first, months without
    any included), valued at LOYALTY_POINT_VALUE_EUR, in EUR and in CHF. Read from the figures,
    whose liability is computed in one query by the beat job."""
    point_value = Decimal(str(settings.LOYALTY_POINT_VALUE_EUR))
    chf_to_eur = Decimal(str(settings.LOYALTY_CURRENCY_TO_EUR.get("CHF", 1)))
    points_by_month = {month[:7]: points for month, points in figures["liability"]}
    first = _computed_day(figures).replace(day=1)
    rows = []
    for offset in range(months):
        year, month_index = divmod(first.month - 1 + offset, 12)
        month = date(first.year + year, month_index + 1, 1)
        points = points_by_month.get(month.isoformat()[:7], 0)
        eur = (points * point_value).quantize(Decimal("0.01"))
        rows.append({"month": month, "points": points, "eur": eur,
                     "chf": (eur / chf_to_eur).quantize(Decimal("0.01"))})
    return rows


# Axis titles of the charts (x, y); the y axis's ticks are formatted in the page's language by
# static/console/charts.js, which reads these from the first dataset.
_AXES = {"enrolments": (_("Day"), _("Members")), "revenue": (_("Day"), _("EUR")),
         "points": (_("Day"), _("Points")), "liability": (_("Expiry month"), _("Points")),
         "nps": (_("Month"), _("NPS"))}
_MONTHLY = {"liability", "nps"}
_COUNTS = {"enrolments", "points", "liability"}  # whole numbers: no 0,5 ticks


def localized_chart(name: str, chart: dict, days: int) -> dict:
    """The chart as the page shows it: dates in the active language, titled and ticked axes."""
    label = formatting.month if name in _MONTHLY else formatting.day
    x_title, y_title = _AXES[name]
    if name not in _MONTHLY and days > 90:
        x_title = _("Week from")
    datasets = [dict(dataset, displayYAxis=True) for dataset in chart["datasets"]]
    if datasets:
        datasets[0].update({"xAxisTitle": str(x_title), "yAxisTitle": str(y_title), "wholeNumbers": name in _COUNTS})
    return {"labels": [label(value) for value in chart["labels"]], "datasets": datasets}


def dashboard_callback(request, context: dict) -> dict:
    """unfold's hook for the admin start page."""
    days = _period_from(request)
    figures = figures_or_compute()
    charts = chart_series(figures, days)
    context.update({
        "kpis": kpis(figures, days),
        "charts": {name: json.dumps(localized_chart(name, chart, days)) for name, chart in charts.items()},
        "liability_months": liability_by_expiry_month(figures),
        "period_days": days,
        "periods": PERIODS,
        "computed_at": datetime.fromisoformat(figures["computed_at"]),
        "wallets": wallet_statuses(),
    })
    return context


def wallet_statuses() -> list:
    """Whether the portal offers the card for Apple Wallet and Google Wallet (members.wallet)."""
    from members.wallet import apple_status, google_status

    return [apple_status(), google_status()]


def _period_from(request) -> int:
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        return 30
    return days if days in PERIODS else 30


def dashboard_csv(request, chart: str):
    """Every chart's numbers as CSV (staff only: wrapped in admin_view in urls.py)."""
    from django.http import Http404, HttpResponse

    charts = chart_series(figures_or_compute(), _period_from(request))
    if chart not in charts:
        raise Http404
    response = HttpResponse(chart_csv(charts[chart]), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="treuepunkt-{chart}.csv"'
    return response
