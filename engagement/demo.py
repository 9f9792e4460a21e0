"""Demo challenges and badges: three challenges running this month (three purchases, the wine
range tried, a four-week streak), their badges, and the progress of the demo member and a sample
of members, counted from their purchases in the challenges' period.

Idempotent: challenges and badges are found by German name, and progress is counted through the
engine with each purchase's key, so seeding twice counts nothing twice and rewards nobody again.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from members.models import Member

from .engine import Step, contributions_record, value_after_returns
from .models import Badge, Challenge, Picture
from .streaks import week_of

BADGES = {
    "regular": ("Stammkunde", "Regular", Picture.TROPHY, "Drei Einkäufe in einem Monat.",
                "Three purchases in a month."),
    "wine": ("Weinkenner", "Wine connoisseur", Picture.HEART, "Das Weinsortiment entdeckt.",
             "Discovered our wine range."),
    "streak": ("Dranbleiber", "Keeps it up", Picture.FLAME, "Vier Wochen in Folge eingekauft.",
               "Shopped four weeks in a row."),
}


def _badges() -> dict[str, Badge]:
    badges = {}
    for key, (name_de, name_en, picture, description_de, description_en) in BADGES.items():
        badges[key], _created = Badge.objects.get_or_create(name_de=name_de, defaults={
            "name_en": name_en, "picture": picture, "description_de": description_de,
            "description_en": description_en})
    return badges


def _challenges(badges: dict[str, Badge]) -> list[Challenge]:
    now = timezone.now()
    starts, ends = now - timedelta(days=28), now + timedelta(days=30)
    specs = [
        ("Drei Einkäufe im Monat", "Three purchases this month", Challenge.Goal.PURCHASES, 3, "",
         {"reward_points": 150, "badge": badges["regular"]},
         "Kaufen Sie dreimal ein und erhalten Sie 150 Bonuspunkte.", "Shop three times and get 150 bonus points."),
        ("Wein entdecken", "Discover our wines", Challenge.Goal.CATEGORY, 1, "Wein",
         {"reward_points": 50, "badge": badges["wine"]},
         "Probieren Sie etwas aus unserem Weinsortiment.", "Try something from our wine range."),
        ("Vier Wochen in Folge", "Four weeks in a row", Challenge.Goal.STREAK, 4, "",
         {"reward_points": 300, "badge": badges["streak"]},
         "Kaufen Sie vier Wochen in Folge mindestens einmal pro Woche ein.",
         "Shop at least once a week for four weeks in a row."),
    ]
    challenges = []
    for name_de, name_en, goal, target, category, reward, description_de, description_en in specs:
        challenge, _created = Challenge.objects.get_or_create(name_de=name_de, defaults={
            "name_en": name_en, "goal": goal, "target": target, "category": category, "starts_at": starts,
            "ends_at": ends, "description_de": description_de, "description_en": description_en, **reward})
        challenges.append(challenge)
    return challenges


@transaction.atomic
def seed_engagement_demo(*, member_email: str, sample: int = 200) -> dict:
    """Returns how many progress rows the demo has (the same on a second run)."""
    from rewards.models import Purchase

    challenges = _challenges(_badges())
    member_ids = [*Member.objects.filter(email__iexact=member_email).values_list("pk", flat=True),
                  *Member.objects.active().order_by("pk").values_list("pk", flat=True)[:sample]]
    since = min(challenge.starts_at for challenge in challenges)
    purchases = (Purchase.objects.filter(member_id__in=member_ids, occurred_at__gte=since)
                 .prefetch_related("lines").order_by("occurred_at", "pk"))
    steps = [Step(challenge=challenge, member_id=purchase.member_id, source_key=f"purchase:{purchase.pk}",
                  value=value_after_returns(challenge, purchase),
                  week=week_of(purchase.occurred_at) if challenge.goal == Challenge.Goal.STREAK else None)
             for purchase in purchases for challenge in challenges if challenge.runs_at(purchase.occurred_at)]
    contributions_record(steps=steps)
    from .models import ChallengeProgress

    return {"challenge_progress": ChallengeProgress.objects.filter(challenge__in=challenges).count()}
