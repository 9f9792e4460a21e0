"""Campaigns: launching, preparing, pausing, resuming and triggers (sending: campaigns.sending,
raffles: campaigns.raffles).

How a send works, and why nobody gets a campaign twice
------------------------------------------------------
1. Prepare: the audience is written as `Message` rows in state QUEUED, one per member and
   occurrence; the database's unique (campaign, member, occurrence) constraint makes a repeated
   or concurrent prepare add nothing. The A/B arm (variant or control) is decided here by
   hashing (campaign, member): deterministic, so any retry lands in the same arm.
2. Batches of message ids go to Celery. A batch works in chunks (LOYALTY_CAMPAIGN_SEND_CHUNK);
   each chunk first checks its campaigns' status (paused or cancelled: it leaves its rows
   queued and stops).
3. Claim, one transaction per chunk: with the chunk's member rows locked in primary-key order
   (which serialises the frequency cap between concurrent campaigns) and then its message
   rows, the sender re-checks consent, address and cap *now* — a consent withdrawn yesterday
   means no message today — with one query each for the whole chunk, and moves the rows
   QUEUED → SENDING. A row another worker claimed first is not QUEUED any more once the locks
   are ours, so only one worker goes on with it. A member set aside gets SKIPPED with the
   reason (no consent, no address, capped, control group, inactive). Incentives are issued in
   the same transaction, once per message: bonus points carry the ledger reference
   `campaign:<message id>` (unique), a voucher is stored on the row.
4. Deliver outside any transaction, each message on its own over the batch's one backend
   connection, then SENDING → SENT for the chunk in one update (or FAILED with the error of
   the message that failed).

At most once by default. A worker killed between the claim and the last step leaves its chunk
in SENDING and nobody can know which of those e-mails left: SMTP has no idempotency key. The
sweeper (`sends_resume_stalled`, a beat job) finds such rows after
LOYALTY_CAMPAIGN_CLAIM_TIMEOUT_SECONDS and marks them FAILED ("interrupted") instead of sending
again, because a missing marketing e-mail costs little and a duplicate annoys. When the
configured backend declares `idempotent_delivery` (a gateway that drops a repeat of the same
message reference; every e-mail carries a stable Message-ID and every SMS the message id), the
sweeper queues the rows again instead: at-least-once delivery plus an idempotent receiver is
exactly once.
Lost batch tasks (a Redis restarted without its data, a worker killed as a whole whose task
waits for the visibility timeout) are found by the same sweeper: a campaign with queued rows
and no progress for the timeout is dispatched again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import batched

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.tasks import enqueue
from members.push import push_configured, push_not_configured_text

from . import rendering, triggers
from .active_triggers import active_triggers_changed
from .errors import CampaignNotReady, CampaignStateError, InvalidTemplate
from .experiment import assign
from .models import Campaign, Message, Variant
from .segments import segment_queryset
from .sending import (
    INTERRUPTED,
    PARAMETERS_PER_QUERY,
    SendReport,
    delivery_is_idempotent,
    finish_if_complete,
    messages_send,
)

S = Campaign.Status


# --- Status changes: the allowed transitions in one place ------------------------------------

TRANSITIONS: dict[str, set[str]] = {
    S.SCHEDULED: {S.DRAFT},
    S.SENDING: {S.DRAFT, S.SCHEDULED, S.PAUSED},
    S.ACTIVE: {S.DRAFT, S.PAUSED},
    S.PAUSED: {S.SENDING, S.ACTIVE, S.SCHEDULED},
    S.DONE: {S.SENDING, S.ACTIVE, S.PAUSED},
    S.CANCELLED: {S.DRAFT, S.SCHEDULED, S.SENDING, S.PAUSED},
}


def _transition(campaign: Campaign, to: str, **fields) -> None:
    """Compare-and-set the status; a concurrent change in between makes this fail loudly."""
    allowed = TRANSITIONS[to]
    if campaign.status not in allowed:
        raise CampaignStateError(status=campaign.get_status_display())
    changed = Campaign.objects.filter(pk=campaign.pk, status=campaign.status).update(status=to, **fields)
    if not changed:
        raise CampaignStateError(status=_("being changed by someone else"))
    campaign.status = to
    for name, value in fields.items():
        setattr(campaign, name, value)
    # A queryset update sends no post_save: the event subscriber's copy must learn that a
    # triggered campaign became active or stopped. (The other status updates below concern
    # broadcasts, which that copy does not hold.)
    active_triggers_changed()


def campaign_lock(campaign_id: int) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign_id)


def campaign_problems(campaign: Campaign) -> list[str]:
    """Why the campaign can't start (empty: it can)."""
    problems = []
    variants = list(campaign.variants.all()) if campaign.pk else []
    if not variants:
        problems.append(_("add at least one variant with a text"))
    for variant in variants:
        for text in (variant.subject_de, variant.subject_en, variant.body_de, variant.body_en):
            try:
                rendering.template_validate(text)
            except InvalidTemplate as error:
                problems.append(_("variant %(name)s: %(error)s") % {"name": variant.name, "error": error})
    if campaign.kind == Campaign.Kind.TRIGGERED:
        needs_days = (Campaign.Trigger.AFTER_PURCHASE, Campaign.Trigger.INACTIVITY)
        if not campaign.trigger:
            problems.append(_("choose a trigger"))
        elif campaign.trigger in needs_days and not campaign.trigger_days:
            problems.append(_("this trigger needs the number of days"))
        elif campaign.trigger == Campaign.Trigger.POINTS_MILESTONE and not campaign.trigger_points:
            problems.append(_("this trigger needs the milestone in points"))
    elif campaign.trigger:
        problems.append(_("only triggered campaigns have a trigger"))
    if campaign.reward_id and not campaign.reward.active:
        problems.append(_("the voucher's reward is not active"))
    if campaign.kind == Campaign.Kind.RAFFLE and campaign.winners_count < 1:
        problems.append(_("a raffle needs at least one winner"))
    if campaign.channel == Campaign.Channel.PUSH and not push_configured():
        problems.append(push_not_configured_text())
    return problems


@transaction.atomic
def campaign_launch(*, campaign_id: int, staff_user: AbstractBaseUser | None = None,
                    now: datetime | None = None, dispatch: bool = True) -> Campaign:
    """Start a campaign: a broadcast or raffle sends now or waits for its time; a triggered
    campaign becomes active and the trigger job takes it from there. `dispatch=False` leaves
    the preparation to the caller (`campaign_run_inline`: demo data, the shell)."""
    now = now or timezone.now()
    campaign = campaign_lock(campaign_id)
    if problems := campaign_problems(campaign):
        raise CampaignNotReady(detail="; ".join(problems))
    if campaign.kind == Campaign.Kind.TRIGGERED:
        _transition(campaign, S.ACTIVE, started_at=campaign.started_at or now, last_progress_at=now)
    elif campaign.scheduled_at and campaign.scheduled_at > now:
        _transition(campaign, S.SCHEDULED)
    else:
        _start_sending(campaign, now, dispatch=dispatch)
    return campaign


def _start_sending(campaign: Campaign, now: datetime, *, dispatch: bool = True) -> None:
    from . import tasks

    _transition(campaign, S.SENDING, started_at=now, last_progress_at=now)
    if dispatch:
        enqueue(tasks.prepare_campaign, campaign.pk)


def campaigns_start_due(*, now: datetime | None = None) -> int:
    """Beat job: scheduled broadcasts whose time has come start sending."""
    now = now or timezone.now()
    started = 0
    for campaign_id in Campaign.objects.filter(status=S.SCHEDULED, scheduled_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            campaign = campaign_lock(campaign_id)
            if campaign.status == S.SCHEDULED:
                _start_sending(campaign, now)
                started += 1
    return started


@transaction.atomic
def campaign_pause(*, campaign_id: int, staff_user: AbstractBaseUser | None = None) -> Campaign:
    """Batches still queued see the status and stop; nothing queued is lost."""
    campaign = campaign_lock(campaign_id)
    _transition(campaign, S.PAUSED)
    return campaign


@transaction.atomic
def campaign_resume(*, campaign_id: int, staff_user: AbstractBaseUser | None = None,
                    now: datetime | None = None) -> Campaign:
    from . import tasks

    now = now or timezone.now()
    campaign = campaign_lock(campaign_id)
    if campaign.status != S.PAUSED:
        raise CampaignStateError(status=campaign.get_status_display())
    if campaign.kind == Campaign.Kind.TRIGGERED:
        _transition(campaign, S.ACTIVE, last_progress_at=now)
    elif campaign.started_at is None:  # paused while scheduled: back to the schedule
        Campaign.objects.filter(pk=campaign.pk).update(status=S.SCHEDULED)
        campaign.status = S.SCHEDULED
        return campaign
    else:
        _transition(campaign, S.SENDING, last_progress_at=now)
        if campaign.prepared_at is None:
            enqueue(tasks.prepare_campaign, campaign.pk)
    _dispatch(list(Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED)
                   .order_by("pk").values_list("pk", flat=True)))
    return campaign


@transaction.atomic
def campaign_stop(*, campaign_id: int, staff_user: AbstractBaseUser | None = None,
                  now: datetime | None = None) -> Campaign:
    """Cancel a broadcast (or end a triggered campaign): what is still queued is skipped."""
    now = now or timezone.now()
    campaign = campaign_lock(campaign_id)
    target = S.DONE if campaign.kind == Campaign.Kind.TRIGGERED else S.CANCELLED
    _transition(campaign, target, finished_at=now)
    Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED).update(
        status=Message.Status.SKIPPED, skip_reason=Message.SkipReason.CANCELLED, processed_at=now)
    return campaign


# --- Preparing the audience -------------------------------------------------------------------

def _dispatch(message_ids: Sequence[int]) -> None:
    """One Celery task per batch of message ids, queued when the transaction commits."""
    from . import tasks

    size = settings.LOYALTY_CAMPAIGN_BATCH_SIZE
    for start in range(0, len(message_ids), size):
        enqueue(tasks.send_batch, list(message_ids[start:start + size]))


def _create_messages(campaign: Campaign, variants: list[Variant], pairs: Iterable[tuple[int, str]],
                     now: datetime) -> list[int]:
    """Insert QUEUED rows for (member, occurrence) pairs that have none; return the queued ids."""
    weights = [variant.weight for variant in variants]
    rows, members, occurrences = [], set(), set()
    for member_id, occurrence in pairs:
        arm = assign(campaign.pk, member_id, holdout_percent=campaign.holdout_percent, weights=weights)
        rows.append(Message(campaign=campaign, member_id=member_id, occurrence=occurrence,
                            variant=variants[arm] if arm is not None else None, is_control=arm is None,
                            channel=campaign.channel, queued_at=now))
        members.add(member_id)
        occurrences.add(occurrence)
    if not rows:
        return []
    Message.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    # In pieces: a trigger can be due for most of the membership (see PARAMETERS_PER_QUERY).
    queued: list[int] = []
    for piece in batched(sorted(members), PARAMETERS_PER_QUERY):
        queued += Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED, member_id__in=piece,
                                         occurrence__in=occurrences).values_list("pk", flat=True)
    return sorted(queued)


def campaign_prepare(*, campaign_id: int, now: datetime | None = None, dispatch: bool = True,
                     chunk_size: int = 5000) -> int:
    """Write the audience of a broadcast or raffle as queued messages and dispatch batches.

    Chunk by chunk, each its own transaction, so sending starts while a large audience is still
    being written. Safe to run again (the unique constraint skips existing rows); a pause stops
    it and `campaign_resume` runs it again."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("segment").get(pk=campaign_id)
    if campaign.status != S.SENDING or campaign.kind == Campaign.Kind.TRIGGERED:
        return 0
    variants = list(campaign.variants.order_by("pk"))
    member_ids = list(segment_queryset(campaign.segment, now=now).order_by("pk").values_list("pk", flat=True))
    created = 0
    for start in range(0, len(member_ids), chunk_size):
        if Campaign.objects.filter(pk=campaign.pk, status=S.SENDING).update(last_progress_at=timezone.now()) == 0:
            return created  # paused or cancelled meanwhile
        with transaction.atomic():
            chunk = member_ids[start:start + chunk_size]
            queued = _create_messages(campaign, variants, ((pk, "once") for pk in chunk), now)
            created += len(queued)
            if dispatch:
                _dispatch(queued)
    Campaign.objects.filter(pk=campaign.pk, prepared_at__isnull=True).update(prepared_at=timezone.now())
    finish_if_complete(campaign.pk, now)
    return created


def triggers_run(*, now: datetime | None = None, dispatch: bool = True) -> dict[int, int]:
    """Beat job: every active triggered campaign queues messages for the members it is due for."""
    now = now or timezone.now()
    report = {}
    for campaign in Campaign.objects.triggered_active().select_related("segment"):
        report[campaign.pk] = trigger_run_campaign(campaign=campaign, now=now, dispatch=dispatch)
    return report


def trigger_run_woken(*, campaign_id: int, now: datetime | None = None, dispatch: bool = True) -> int:
    """An event woke the campaign (campaigns.subscribers): run its trigger now rather than at the
    next beat, if it is still active. The beat job stays the source of truth; this only makes
    a welcome or an upgrade message leave within seconds."""
    campaign = Campaign.objects.triggered_active().select_related("segment").filter(pk=campaign_id).first()
    if campaign is None:  # paused or ended since the event
        return 0
    return trigger_run_campaign(campaign=campaign, now=now, dispatch=dispatch)


@transaction.atomic
def trigger_run_campaign(*, campaign: Campaign, now: datetime | None = None, dispatch: bool = True) -> int:
    now = now or timezone.now()
    pairs = triggers.due_pairs(campaign, now)
    if not pairs:
        return 0
    queued = _create_messages(campaign, list(campaign.variants.order_by("pk")), pairs, now)
    Campaign.objects.filter(pk=campaign.pk).update(last_progress_at=now)
    if dispatch:
        _dispatch(queued)
    return len(queued)


def sends_resume_stalled(*, now: datetime | None = None, stale_after_seconds: int | None = None) -> dict:
    """Beat job: deal with claims whose worker is gone, and dispatch again the queued messages
    of campaigns that made no progress for the claim timeout (their batch tasks were lost)."""
    from . import tasks

    now = now or timezone.now()
    seconds = settings.LOYALTY_CAMPAIGN_CLAIM_TIMEOUT_SECONDS if stale_after_seconds is None else stale_after_seconds
    cutoff = now - timedelta(seconds=seconds)
    report = {"requeued": 0, "interrupted": 0, "campaigns": 0}
    for channel in Campaign.Channel.values:
        stale = Message.objects.filter(status=Message.Status.SENDING, claimed_at__lte=cutoff, channel=channel)
        if delivery_is_idempotent(channel):
            report["requeued"] += stale.update(status=Message.Status.QUEUED)
        else:
            report["interrupted"] += stale.update(status=Message.Status.FAILED, processed_at=now, error=INTERRUPTED)
    stalled = Campaign.objects.filter(status__in=[S.SENDING, S.ACTIVE]).filter(
        Q(last_progress_at__isnull=True) | Q(last_progress_at__lte=cutoff))
    for campaign in stalled:
        with transaction.atomic():
            Campaign.objects.filter(pk=campaign.pk).update(last_progress_at=now)
            if campaign.kind != Campaign.Kind.TRIGGERED and campaign.prepared_at is None:
                enqueue(tasks.prepare_campaign, campaign.pk)
            _dispatch(list(Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED)
                           .order_by("pk").values_list("pk", flat=True)))
        finish_if_complete(campaign.pk, now)
        report["campaigns"] += 1
    return report


@transaction.atomic
def messages_retry_failed(*, campaign_id: int, staff_user: AbstractBaseUser | None = None) -> int:
    """Queue the campaign's failed messages again (staff decide; interrupted ones may have
    reached the member already)."""
    campaign = campaign_lock(campaign_id)
    if campaign.status not in (S.SENDING, S.ACTIVE, S.DONE):
        raise CampaignStateError(status=campaign.get_status_display())
    ids = list(Message.objects.filter(campaign=campaign, status=Message.Status.FAILED).values_list("pk", flat=True))
    for piece in batched(ids, PARAMETERS_PER_QUERY):
        Message.objects.filter(pk__in=piece).update(status=Message.Status.QUEUED, error="", claimed_at=None)
    if ids and campaign.status == S.DONE and campaign.kind != Campaign.Kind.TRIGGERED:
        Campaign.objects.filter(pk=campaign.pk).update(status=S.SENDING, finished_at=None)
    _dispatch(ids)
    return len(ids)


def campaign_run_inline(*, campaign_id: int, now: datetime | None = None, email_connection=None) -> SendReport:
    """The whole send in this process, without Celery: demo data, tests and the shell."""
    campaign_prepare(campaign_id=campaign_id, now=now, dispatch=False)
    ids = list(Message.objects.filter(campaign_id=campaign_id, status=Message.Status.QUEUED)
               .order_by("pk").values_list("pk", flat=True))
    return messages_send(message_ids=ids, now=now, email_connection=email_connection)
