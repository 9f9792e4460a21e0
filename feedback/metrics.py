"""NPS, CSAT and CES: pure functions over a queryset of responses, computed in the database.

Definitions (shared/DESIGN.md):
- NPS (0-10): promoters 9-10, passives 7-8, detractors 0-6; NPS = % promoters - % detractors,
  from -100 to +100.
- CSAT (1-5): the share (in %) of answers 4 or 5.
- CES (1-7, 7 = "it was easy"): the average score.

Every figure is one aggregate query (COUNT ... FILTER (WHERE ...)), never a loop over rows, so
a year of answers costs the same as a day. No answers give None, never a division by zero: "no
NPS yet" is not an NPS of 0. A breakdown (by month, tier, store, segment) returns one `Summary`
per group that has answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils.formats import date_format
from django.utils.translation import get_language

# For each kind: (lowest "positive" score, highest "negative" score). NPS: promoters from 9,
# detractors up to 6; CSAT: satisfied from 4, unhappy up to 2; CES: easy from 5, hard up to 3.
THRESHOLDS = {"nps": (9, 6), "csat": (4, 2), "ces": (5, 3)}

PROMOTER, PASSIVE, DETRACTOR = "promoter", "passive", "detractor"


def classify(kind: str, score: int) -> str:
    positive, negative = THRESHOLDS[kind]
    if score >= positive:
        return PROMOTER
    if score <= negative:
        return DETRACTOR
    return PASSIVE


@dataclass(frozen=True)
class Summary:
    kind: str
    answers: int
    positive: int  # NPS promoters, CSAT 4-5, CES 5-7
    neutral: int
    negative: int  # NPS detractors, CSAT 1-2, CES 1-3
    score_sum: int

    @property
    def value(self) -> float | None:
        """The headline figure of the kind: NPS, CSAT % or the CES average."""
        if self.kind == "nps":
            return nps_from_counts(promoters=self.positive, detractors=self.negative, answers=self.answers)
        if self.kind == "csat":
            return share_percent(self.positive, self.answers)
        return average(self.score_sum, self.answers)

    def percent(self, part: int) -> float | None:
        return share_percent(part, self.answers)


def nps_from_counts(*, promoters: int, detractors: int, answers: int) -> float | None:
    if not answers:
        return None
    return 100.0 * (promoters - detractors) / answers


def share_percent(part: int, answers: int) -> float | None:
    return 100.0 * part / answers if answers else None


def average(total: int, answers: int) -> float | None:
    return total / answers if answers else None


def _aggregates(kind: str, prefix: str = "", condition: Q | None = None) -> dict:
    positive, negative = THRESHOLDS[kind]
    base = condition or Q()
    return {
        f"{prefix}answers": Count("pk", filter=base) if condition is not None else Count("pk"),
        f"{prefix}positive": Count("pk", filter=base & Q(score__gte=positive)),
        f"{prefix}negative": Count("pk", filter=base & Q(score__lte=negative)),
        f"{prefix}score_sum": Sum("score", filter=condition) if condition is not None else Sum("score"),
    }


def _summary(kind: str, row: dict, prefix: str = "") -> Summary:
    answers = row[f"{prefix}answers"] or 0
    positive, negative = row[f"{prefix}positive"] or 0, row[f"{prefix}negative"] or 0
    return Summary(kind=kind, answers=answers, positive=positive, negative=negative,
                   neutral=answers - positive - negative, score_sum=row[f"{prefix}score_sum"] or 0)


def of_kind(responses: QuerySet, kind: str) -> QuerySet:
    return responses.filter(survey__kind=kind)


def in_period(responses: QuerySet, start: datetime | date | None = None,
              end: datetime | date | None = None) -> QuerySet:
    """Answers from `start` (inclusive) to `end` (exclusive); either may be open."""
    if start is not None:
        responses = responses.filter(created_at__gte=start)
    if end is not None:
        responses = responses.filter(created_at__lt=end)
    return responses


def summarize(responses: QuerySet, kind: str) -> Summary:
    """The answers of `kind` in `responses` (other kinds are left out), in one query."""
    return _summary(kind, of_kind(responses, kind).aggregate(**_aggregates(kind)))


def nps(responses: QuerySet) -> float | None:
    return summarize(responses, "nps").value


def csat(responses: QuerySet) -> float | None:
    return summarize(responses, "csat").value


def ces(responses: QuerySet) -> float | None:
    return summarize(responses, "ces").value


def _grouped(responses: QuerySet, kind: str, *fields: str, **expressions) -> list[dict]:
    return list(of_kind(responses, kind).order_by().values(*fields, **expressions)
                .annotate(**_aggregates(kind)).order_by(*(expressions or fields)))


def by_month(responses: QuerySet, kind: str) -> list[tuple[date, Summary]]:
    rows = _grouped(responses, kind, month=TruncMonth("created_at"))
    return [(_as_date(row["month"]), _summary(kind, row)) for row in rows]


def _as_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def by_tier(responses: QuerySet, kind: str) -> list[tuple[dict, Summary]]:
    """Per tier at the time of the answer ({"id": None, ...} for answers without one)."""
    rows = _grouped(responses, kind, "tier_id", "tier__name_de", "tier__name_en", "tier__rank")
    rows.sort(key=lambda row: (row["tier__rank"] is None, row["tier__rank"] or 0))
    english = (get_language() or "de").startswith("en")
    return [({"id": row["tier_id"], "name_de": row["tier__name_de"], "name_en": row["tier__name_en"],
              # the name in the reader's language, as Tier.name would say it (German when no English one)
              "name": (row["tier__name_en"] if english else "") or row["tier__name_de"]},
             _summary(kind, row)) for row in rows]


def by_store(responses: QuerySet, kind: str) -> list[tuple[dict, Summary]]:
    rows = _grouped(responses, kind, "store_id", "store__name")
    rows.sort(key=lambda row: (row["store__name"] is None, row["store__name"] or ""))
    return [({"id": row["store_id"], "name": row["store__name"]}, _summary(kind, row)) for row in rows]


def by_segment(responses: QuerySet, kind: str, segments: Iterable) -> list[tuple[object, Summary]]:
    """Per segment (members in it now), all segments in one query: each is a filtered COUNT
    over a member subquery. A member in two segments counts in both."""
    from campaigns.segments import segment_queryset

    segments = list(segments)
    if not segments:
        return []
    aggregates: dict = {}
    for index, segment in enumerate(segments):
        aggregates.update(_aggregates(kind, prefix=f"s{index}_",
                                      condition=Q(member__in=segment_queryset(segment).values("pk"))))
    row = of_kind(responses, kind).aggregate(**aggregates)
    return [(segment, _summary(kind, row, prefix=f"s{index}_")) for index, segment in enumerate(segments)]


def trend_chart(months: Sequence[tuple[date, Summary]], *, label: str) -> dict:
    """Chart.js data (unfold's line chart) for a monthly breakdown; empty months are gaps. The
    months are named in the active language ("Dezember 2026", "December 2026")."""
    return {
        "labels": [date_format(month, "YEAR_MONTH_FORMAT") for month, _summary in months],
        "datasets": [{"label": label, "data": [None if summary.value is None else round(summary.value, 1)
                                               for _month, summary in months]}],
    }
