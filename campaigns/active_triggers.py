"""A per-process copy of the active triggered campaigns: (id, trigger, milestone points).

The event subscriber (campaigns.subscribers) asks on every enrolment, purchase and tier change
whether a campaign waits for it, and most of the time none does: so each process keeps the
list and compares a version stamp in the shared cache (one cache read, no query) that every
save or delete of a campaign, and every status change (services._transition, a queryset
update that sends no signal), replaces. Campaigns change a few times a month.
"""

from __future__ import annotations

from typing import NamedTuple

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core.shared_version import SharedVersion

from .models import Campaign

VERSION = SharedVersion("loyalty:active-trigger-campaigns-version")
_known: dict = {"version": None, "rows": []}


class ActiveTrigger(NamedTuple):
    campaign_id: int
    trigger: str
    milestone_points: int | None


def active_triggers() -> list[ActiveTrigger]:
    version = VERSION.current()
    if _known["version"] != version:
        rows = Campaign.objects.triggered_active().order_by("pk").values_list("pk", "trigger", "trigger_points")
        _known.update(version=version, rows=[ActiveTrigger(*row) for row in rows])
    return _known["rows"]


def active_triggers_changed() -> None:
    """Call after changing a campaign with a queryset update (which sends no signal)."""
    VERSION.bump_now_and_on_commit()


@receiver([post_save, post_delete], sender=Campaign)
def _campaign_changed(**kwargs) -> None:
    active_triggers_changed()
