"""A per-process copy of the challenges events may still count for.

Every purchase asks whether a challenge waits for it, and most of the time none does: each
process keeps the list and compares a version stamp in the shared cache (one cache read, no
query) that every save or delete of a challenge replaces. The list holds active challenges
that have not ended, or ended within the return window (a return may still undo progress);
whether a challenge runs at an event's time is checked per event (`Challenge.runs_at`).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from core.shared_version import SharedVersion
from rewards import programme

from .models import Badge, Challenge

VERSION = SharedVersion("loyalty:engagement-challenges-version")
_known: dict = {"version": None, "loaded_at": None, "rows": []}
# Reload at least this often, so challenges that ended long ago drop out without a save.
RELOAD_AFTER = timedelta(hours=1)


def return_window() -> timedelta:
    """How long after a purchase a return still undoes its challenge progress: the points'
    return window (rewards.programme.return_window_days) or, where points are not held,
    LOYALTY_CHALLENGE_RETURN_DAYS."""
    days = programme.return_window_days() or getattr(settings, "LOYALTY_CHALLENGE_RETURN_DAYS", 30)
    return timedelta(days=days)


def active_challenges() -> list[Challenge]:
    version = VERSION.current()
    now = timezone.now()
    if _known["version"] != version or _known["loaded_at"] is None or now - _known["loaded_at"] > RELOAD_AFTER:
        rows = list(Challenge.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now - return_window()),
                                             active=True)
                    .select_related("reward", "badge", "segment").order_by("pk"))
        _known.update(version=version, loaded_at=now, rows=rows)
    return _known["rows"]


def challenges_changed() -> None:
    VERSION.bump_now_and_on_commit()


@receiver([post_save, post_delete], sender=Challenge)
@receiver([post_save, post_delete], sender=Badge)
def _challenge_changed(**kwargs) -> None:
    challenges_changed()
