"""What campaigns does when something happens to a member (see core/events.py and
members.privacy); registered in CampaignsConfig.ready()."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.core.cache import cache
from django.db import transaction

from core.events import Event, subscribe
from core.tasks import enqueue
from members.events import MemberEnrolled
from members.privacy import PersonalValues, personal_data_scrubber, scrub_rows
from rewards.events import PointsEarned, TierChanged

from .active_triggers import ActiveTrigger, active_triggers
from .models import Campaign, Message

# A woken campaign is not woken again for this long: a burst of purchases queues one run, not
# thousands. An event inside the window waits for the beat job, as every event did before.
WAKE_DEBOUNCE_SECONDS = 30


@personal_data_scrubber
def scrub_messages(member_ids: list[int], values: PersonalValues) -> None:
    """Erasure: the address a message went to, and an error text that may quote it."""
    Message.objects.filter(member_id__in=member_ids).exclude(to_address="").update(to_address="")
    scrub_rows(Message.objects.filter(member_id__in=member_ids).exclude(error=""), values, ["error"])


# --- Waking triggered campaigns ----------------------------------------------------------------
# The beat job (campaigns.tasks.run_triggers) finds what every triggered campaign is due for and
# stays the source of truth (look-back window, one message per occurrence). An event that starts
# a trigger only runs that campaign's trigger early, so a welcome leaves within seconds instead of
# at the next beat; a lost wake-up costs nothing but the wait for the beat.

def _starts(trigger: ActiveTrigger, event: Event) -> bool:
    """Could the event make the campaign due for the member? (Its trigger decides for sure.)"""
    match trigger.trigger:
        case Campaign.Trigger.WELCOME:
            return isinstance(event, MemberEnrolled)
        case Campaign.Trigger.TIER_UPGRADE:
            # The event has no rank of the old tier: a downgrade (the yearly review) wakes the
            # campaign too, and its trigger finds nothing to send.
            return (isinstance(event, TierChanged) and event.from_tier_id is not None
                    and event.to_tier_id is not None)
        case Campaign.Trigger.POINTS_MILESTONE:
            milestone = trigger.milestone_points or 0
            return isinstance(event, PointsEarned) and event.balance - event.points < milestone <= event.balance
    return False


@subscribe(MemberEnrolled, TierChanged, PointsEarned)
def wake_triggered_campaigns(events: Sequence[Event]) -> None:
    """On the purchase path: no query (the active campaigns come from the per-process copy),
    and nothing at all when no triggered campaign waits for these events."""
    for trigger in active_triggers():
        if any(_starts(trigger, event) for event in events):
            # After the commit: the run must see the new member or tier change, and a rolled-back
            # change must not use up the campaign's window.
            transaction.on_commit(functools.partial(_wake, trigger.campaign_id), robust=True)


def _wake(campaign_id: int) -> None:
    from .tasks import run_campaign_trigger

    if cache.add(f"loyalty:campaign-trigger-woken:{campaign_id}", 1, timeout=WAKE_DEBOUNCE_SECONDS):
        enqueue(run_campaign_trigger, campaign_id)
