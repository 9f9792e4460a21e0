"""Campaigns: launching, preparing, sending, pausing, triggers, unsubscribes and raffles.

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

import functools
import hashlib
import random
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from itertools import batched

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from loyalty_site.celery import enqueue
from loyalty_site.errors import LoyaltyError
from members.models import ConsentRecord, Member
from members.services import consents_latest
from rewards.models import Redemption

from . import links, rendering, triggers
from .errors import CampaignNotReady, CampaignStateError, InvalidTemplate, RaffleClosed
from .experiment import assign
from .models import Campaign, Message, RaffleEntry, Variant
from .segments import segment_queryset
from .sms import SmsMessage, get_sms_backend, sms_backend_class

S = Campaign.Status
INTERRUPTED = "interrupted: the worker stopped while sending; not sent again (at most once)"

# A statement takes at most 65,535 parameters (they are bound on the server): id lists that
# grow with the audience are sent in pieces of this size.
PARAMETERS_PER_QUERY = 10_000


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


def _lock_campaign(campaign_id: int) -> Campaign:
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
    return problems


@transaction.atomic
def campaign_launch(*, campaign_id: int, staff_user: AbstractBaseUser | None = None,
                    now: datetime | None = None, dispatch: bool = True) -> Campaign:
    """Start a campaign: a broadcast or raffle sends now or waits for its time; a triggered
    campaign becomes active and the trigger job takes it from there. `dispatch=False` leaves
    the preparation to the caller (`campaign_run_inline`: demo data, the shell)."""
    now = now or timezone.now()
    campaign = _lock_campaign(campaign_id)
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
            campaign = _lock_campaign(campaign_id)
            if campaign.status == S.SCHEDULED:
                _start_sending(campaign, now)
                started += 1
    return started


@transaction.atomic
def campaign_pause(*, campaign_id: int, staff_user: AbstractBaseUser | None = None) -> Campaign:
    """Batches still queued see the status and stop; nothing queued is lost."""
    campaign = _lock_campaign(campaign_id)
    _transition(campaign, S.PAUSED)
    return campaign


@transaction.atomic
def campaign_resume(*, campaign_id: int, staff_user: AbstractBaseUser | None = None,
                    now: datetime | None = None) -> Campaign:
    from . import tasks

    now = now or timezone.now()
    campaign = _lock_campaign(campaign_id)
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
    campaign = _lock_campaign(campaign_id)
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
    _finish_if_complete(campaign.pk, now)
    return created


def triggers_run(*, now: datetime | None = None, dispatch: bool = True) -> dict[int, int]:
    """Beat job: every active triggered campaign queues messages for the members it is due for."""
    now = now or timezone.now()
    report = {}
    for campaign in Campaign.objects.triggered_active().select_related("segment"):
        report[campaign.pk] = trigger_run_campaign(campaign=campaign, now=now, dispatch=dispatch)
    return report


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


# --- Sending ----------------------------------------------------------------------------------

@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    skipped: Counter = field(default_factory=Counter)
    not_claimed: int = 0
    stopped: bool = False


def _purpose(channel: str) -> str:
    return ConsentRecord.Purpose.EMAIL if channel == Campaign.Channel.EMAIL else ConsentRecord.Purpose.SMS


def _address(member: Member, channel: str) -> str:
    return (member.email if channel == Campaign.Channel.EMAIL else member.phone).strip()


def _recent_claims(member_ids: Iterable[int], now: datetime) -> Counter:
    """Messages in flight or sent to each member within the cap window (one query for a chunk)."""
    since = now - timedelta(days=settings.LOYALTY_CAMPAIGN_CAP_DAYS)
    rows = (Message.objects.filter(member_id__in=member_ids, status__in=[Message.Status.SENDING, Message.Status.SENT],
                                   claimed_at__gte=since)
            .order_by().values("member_id").annotate(n=Count("pk")).values_list("member_id", "n"))
    return Counter(dict(rows))


def _effective_consents(member_ids: Iterable[int], purposes: Iterable[str]) -> set[tuple[int, str]]:
    """(member, purpose) pairs whose latest consent record is effective (one query for a chunk;
    the same rule as members.services.consent_given)."""
    return {pair for pair, record in consents_latest(member_ids, purposes).items() if record.is_effective}


def _mark_claimed(messages: list[Message], now: datetime) -> int:
    """QUEUED -> SENDING with each message's address: one statement (arrays)."""
    connection = connections[router.db_for_write(Message)]
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"sending": Message.Status.SENDING, "queued": Message.Status.QUEUED, "now": now,
                                    "ids": [message.pk for message in messages],
                                    "addresses": [message.to_address for message in messages]})
        return cursor.rowcount


def _skip_reason(message: Message, member: Member, *, consented: bool, recent: int) -> str | None:
    """Checked at send time, in this order: eligibility first, then the control group, so the
    control group and the variants hold the same kind of member (eligible, not capped)."""
    reasons = Message.SkipReason
    limit = settings.LOYALTY_CAMPAIGN_CAP_MESSAGES
    if member.status != Member.Status.ACTIVE:
        return reasons.INACTIVE
    if not consented:
        return reasons.NO_CONSENT
    if not _address(member, message.channel):
        return reasons.NO_ADDRESS
    if limit and recent >= limit:
        return reasons.CAPPED
    if message.is_control:
        return reasons.HOLDOUT
    return None


# QUEUED → SENDING for a chunk, each row with its own address: one statement with two array
# parameters (an ORM update would need a CASE with a branch per row, which costs more to build
# and to run than the rest of the claim).
_CLAIM_SQL = """
    UPDATE campaigns_message AS message
    SET status = %(sending)s, claimed_at = %(now)s, attempts = message.attempts + 1, error = '',
        to_address = claim.address
    FROM unnest(%(ids)s::bigint[], %(addresses)s::text[]) AS claim (id, address)
    WHERE message.id = claim.id AND message.status = %(queued)s
"""


@dataclass
class _Claim:
    """What one claim transaction decided for a chunk of messages."""

    claimed: list[Message] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    not_claimed: int = 0


@transaction.atomic
def _messages_claim(message_ids: Sequence[int], now: datetime) -> _Claim:
    """Decide and claim a chunk of queued messages in one transaction, with a fixed number of
    queries for the checks (incentives add their own, per message).

    The chunk's members are locked first, in primary-key order (the ledger's lock order, and
    deadlock-free between two workers with overlapping chunks); that serialises the frequency
    cap between concurrent campaigns. Then the message rows are locked, so the statuses read
    here stay true until the updates below (a cancel does not take member locks)."""
    from rewards.ledger import points_credit
    from rewards.models import PointEntry

    result = _Claim()
    member_ids = set(Message.objects.filter(pk__in=message_ids).values_list("member_id", flat=True))
    members = {member.pk: member for member in Member.objects.select_for_update(of=("self",))
               .select_related("tier").filter(pk__in=member_ids).order_by("pk")}
    messages = list(Message.objects.select_for_update(of=("self",)).select_related("campaign", "variant")
                    .filter(pk__in=message_ids).order_by("pk"))
    consents = _effective_consents(members, {_purpose(message.channel) for message in messages})
    recent = _recent_claims(members, now) if settings.LOYALTY_CAMPAIGN_CAP_MESSAGES else Counter()
    skips: dict[str, list[int]] = {}
    for message in messages:
        if message.status != Message.Status.QUEUED:
            if message.status == Message.Status.SKIPPED:
                result.skipped[message.skip_reason] += 1
            else:
                result.not_claimed += 1
            continue
        member = members[message.member_id]
        reason = _skip_reason(message, member, consented=(member.pk, _purpose(message.channel)) in consents,
                              recent=recent[member.pk])
        if reason:
            skips.setdefault(reason, []).append(message.pk)
            result.skipped[reason] += 1
            continue
        recent[member.pk] += 1  # a second message to the same member in this chunk sees this one
        message.member = member
        message.to_address = _address(member, message.channel)
        result.claimed.append(message)
    for reason, pks in skips.items():
        Message.objects.filter(pk__in=pks, status=Message.Status.QUEUED).update(
            status=Message.Status.SKIPPED, skip_reason=reason, processed_at=now)
    if not result.claimed:
        return result
    claimed = _mark_claimed(result.claimed, now)
    if claimed != len(result.claimed):  # the rows are locked: this would be a bug, not a race
        raise RuntimeError("claimed messages changed under their row locks")
    for message in result.claimed:
        message.status, message.claimed_at, message.error = Message.Status.SENDING, now, ""
        campaign, notes = message.campaign, []
        if campaign.bonus_points:
            # The reference makes the credit happen once per message, also on a retried claim.
            points_credit(member_id=message.member_id, points=campaign.bonus_points, kind=PointEntry.Kind.BONUS,
                          reason=_("Campaign bonus: %(name)s") % {"name": campaign.name},
                          source="campaign", reference=f"campaign:{message.pk}")
            message.bonus_points = campaign.bonus_points
        if campaign.reward_id and message.redemption_id is None:
            try:
                with transaction.atomic():
                    message.redemption = _issue_voucher(message.member_id, campaign.reward_id)
            except LoyaltyError as error:  # out of stock, ended: the message goes out without it
                notes.append(_("no voucher: %(error)s") % {"error": error})
        if campaign.bonus_points or campaign.reward_id:
            message.error = "; ".join(notes)
            Message.objects.filter(pk=message.pk).update(bonus_points=message.bonus_points,
                                                         redemption=message.redemption, error=message.error)
    # The bonus changed balances (and maybe tiers): the texts show the members as they are now.
    credited = {message.member_id for message in result.claimed if message.campaign.bonus_points}
    if credited:
        fresh = Member.objects.select_related("tier").in_bulk(credited)
        for message in result.claimed:
            if message.member_id in credited:
                message.member = fresh[message.member_id]
    # Vouchers issued earlier (a claim retried after a failure) are shown with their reward.
    earlier = {message.redemption_id for message in result.claimed if message.redemption_id}
    if earlier:
        redemptions = Redemption.objects.select_related("reward").in_bulk(earlier)
        for message in result.claimed:
            if message.redemption_id:
                message.redemption = redemptions[message.redemption_id]
    return result


def message_claim(*, message_id: int, now: datetime | None = None) -> Message | None:
    """Decide and claim one queued message. Returns the claimed message (SENDING, incentives
    issued) or None when it was skipped or someone else has it."""
    claim = _messages_claim([message_id], now or timezone.now())
    return claim.claimed[0] if claim.claimed else None


def _issue_voucher(member_id: int, reward_id: int) -> Redemption:
    """A free voucher of `reward` for the member (stock and the member's status apply, not the
    catalogue's conditions)."""
    from rewards.vouchers import redemption_issue

    return redemption_issue(member_id=member_id, reward_id=reward_id, source=Redemption.Source.CAMPAIGN)


def _message_id_header(message: Message) -> str:
    """Stable across retries: the idempotency key for receivers that use one."""
    return f"<campaign-message.{message.pk}@{_domain(settings.DEFAULT_FROM_EMAIL)}>"


@functools.lru_cache(maxsize=8)
def _domain(from_email: str) -> str:
    return parseaddr(from_email)[1].rpartition("@")[2] or "treuepunkt.invalid"


def _expiring_days(campaign: Campaign) -> int | None:
    return campaign.trigger_days if campaign.trigger == Campaign.Trigger.POINTS_EXPIRING else None


def message_render(message: Message, member: Member, *, now: datetime | None = None,
                   expiring: int | None = None, unsubscribe_url: str = "") -> tuple[str, str]:
    """Subject and text of one message in the member's language. `expiring` (the member's
    points expiring in the campaign's window) saves a query, `unsubscribe_url` signing the
    link again, when the caller has them already."""
    campaign = message.campaign
    voucher = message.redemption
    language = member.language or settings.LANGUAGE_CODE
    with translation.override(language):
        extras = rendering.Extras(
            voucher_code=voucher.display_code if voucher else "",
            voucher_name=voucher.reward.name if voucher else "",
            voucher_valid_until=voucher.expires_at if voucher else None,
            bonus_points=message.bonus_points,
            unsubscribe_url=unsubscribe_url or links.unsubscribe_url(message.pk),
            raffle_url=links.raffle_url(message.pk) if campaign.kind == Campaign.Kind.RAFFLE else "",
            raffle_entry_points=campaign.entry_points,
        )
        context = rendering.member_context(member, extras=extras, now=now, expiring=expiring,
                                           expiring_within_days=_expiring_days(campaign))
        subject_template, body_template = message.variant.texts_for(language)
        subject = " ".join(rendering.render_text(subject_template, context).split())
        body = rendering.render_text(body_template, context).strip()
    return subject, body


def _email(message: Message, member: Member, subject: str, body: str, connection,
           url: str = "") -> EmailMultiAlternatives:
    url = url or links.unsubscribe_url(message.pk)
    with translation.override(member.language or settings.LANGUAGE_CODE):
        footer = render_to_string("emails/campaign_footer.txt", {"unsubscribe_url": url})
        html = render_to_string("emails/campaign.html", {
            "subject": subject, "body": body, "unsubscribe_url": url,
            "language": member.language})
    email = EmailMultiAlternatives(
        subject=subject, body=f"{body}\n\n{footer}".strip() + "\n", to=[message.to_address], connection=connection,
        headers={
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs here.
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Message-ID": _message_id_header(message),
        },
    )
    email.attach_alternative(html, "text/html")
    return email


class _Channels:
    """Backends opened once per batch and closed at its end."""

    def __init__(self, email_connection=None) -> None:
        self._email = email_connection
        self._own_email = email_connection is None
        self._sms = None

    def email(self):
        if self._email is None:
            self._email = get_connection()
            self._email.open()
        return self._email

    def sms(self):
        if self._sms is None:
            self._sms = get_sms_backend()
        return self._sms

    def close(self) -> None:
        if self._email is not None and self._own_email:
            self._email.close()


def _expiring_points(messages: Sequence[Message], now: datetime) -> dict[int, int]:
    """The points expiring for each message's member (by message id) in a chunk: one query per
    expiry window, not one per member."""
    from rewards.figures import points_expiring_by_members

    # The window as member_context() takes it: the trigger's days, else the warning period.
    window = {message.pk: _expiring_days(message.campaign) or settings.LOYALTY_EXPIRY_WARNING_DAYS
              for message in messages}
    holders: dict[int, set[int]] = {}
    for message in messages:
        if message.member.points_balance:
            holders.setdefault(window[message.pk], set()).add(message.member_id)
    due = {days: points_expiring_by_members(member_ids=ids, at=now + timedelta(days=days))
           for days, ids in holders.items()}
    return {message.pk: due.get(window[message.pk], {}).get(message.member_id, 0) for message in messages}


def _deliver(message: Message, channels: _Channels, now: datetime, expiring: int) -> None:
    member = message.member
    url = links.unsubscribe_url(message.pk)
    subject, body = message_render(message, member, now=now, expiring=expiring, unsubscribe_url=url)
    if message.channel == Campaign.Channel.EMAIL:
        connection = channels.email()
        sent = connection.send_messages([_email(message, member, subject, body, connection, url)])
    else:
        sent = channels.sms().send_messages([SmsMessage(to=message.to_address, body=body,
                                                        reference=f"campaign-message-{message.pk}")])
    if not sent:
        raise RuntimeError("the backend did not accept the message")


def messages_send(*, message_ids: Sequence[int], now: datetime | None = None, email_connection=None,
                  chunk_size: int | None = None) -> SendReport:
    """Send a batch (the Celery task's body), chunk by chunk: one transaction claims a chunk
    (checks with one query each, see `_messages_claim`), the chunk is delivered outside any
    transaction over the batch's one backend connection, then marked in one update.

    A crash costs at most the chunk in flight: its rows stay SENDING and the sweeper marks them
    interrupted (at most once) or queues them again for an idempotent backend. Each message is
    handed to the backend on its own (over the same connection), so a failure is recorded for
    the message it belongs to: a backend that fails in the middle of a list can't say which of
    the list went out, and at most once would then have to give up the whole list."""
    report = SendReport()
    channels = _Channels(email_connection)
    size = chunk_size or settings.LOYALTY_CAMPAIGN_SEND_CHUNK
    ordered = sorted(set(message_ids))
    fixed_now = now
    try:
        for start in range(0, len(ordered), size):
            now = fixed_now or timezone.now()
            chunk = ordered[start:start + size]
            if not _may_send(chunk):
                report.stopped = True
                break
            claim = _messages_claim(chunk, now)
            report.skipped.update(claim.skipped)
            report.not_claimed += claim.not_claimed
            expiring = _expiring_points(claim.claimed, now) if claim.claimed else {}
            sent, failed = [], []
            for message in claim.claimed:
                try:
                    _deliver(message, channels, now, expiring[message.pk])
                except Exception as error:  # any backend error: record it, go on with the batch
                    failed.append((message.pk, f"{type(error).__name__}: {error}"[:2000]))
                else:
                    sent.append(message.pk)
            for pk, error in failed:
                Message.objects.filter(pk=pk, status=Message.Status.SENDING).update(
                    status=Message.Status.FAILED, processed_at=now, error=error)
            if sent:
                # A late success also corrects an "interrupted" verdict of the sweeper: the truth wins.
                Message.objects.filter(pk__in=sent, status__in=[Message.Status.SENDING, Message.Status.FAILED]).update(
                    status=Message.Status.SENT, processed_at=now,
                    error=Case(When(error=INTERRUPTED, then=Value("")), default=F("error"),
                               output_field=Message._meta.get_field("error")))
            report.failed += len(failed)
            report.sent += len(sent)
    finally:
        channels.close()
    campaign_ids = {campaign_id for piece in batched(message_ids, PARAMETERS_PER_QUERY)
                    for campaign_id in Message.objects.filter(pk__in=piece).values_list("campaign_id", flat=True)}
    for campaign_id in campaign_ids:
        Campaign.objects.filter(pk=campaign_id).update(last_progress_at=timezone.now())
        _finish_if_complete(campaign_id, fixed_now or timezone.now())
    return report


def _may_send(message_ids: Sequence[int]) -> bool:
    """Every campaign of the chunk is still sending (paused or cancelled: the batch stops)."""
    statuses = set(Campaign.objects.filter(messages__pk__in=message_ids).order_by().values_list("status", flat=True)
                   .distinct())
    return statuses <= {S.SENDING, S.ACTIVE}


def _finish_if_complete(campaign_id: int, now: datetime) -> bool:
    """A broadcast is done when its audience is prepared and nothing is queued or in flight."""
    campaign = Campaign.objects.filter(pk=campaign_id).only("kind", "status", "prepared_at").first()
    if campaign is None or campaign.kind == Campaign.Kind.TRIGGERED or campaign.status != S.SENDING:
        return False
    if campaign.prepared_at is None:
        return False
    busy = Message.objects.filter(campaign_id=campaign_id,
                                  status__in=[Message.Status.QUEUED, Message.Status.SENDING]).exists()
    if busy:
        return False
    return bool(Campaign.objects.filter(pk=campaign_id, status=S.SENDING).update(status=S.DONE, finished_at=now))


def delivery_is_idempotent(channel: str) -> bool:
    backend = import_string(settings.EMAIL_BACKEND) if channel == Campaign.Channel.EMAIL else sms_backend_class()
    return bool(getattr(backend, "idempotent_delivery", False))


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
        _finish_if_complete(campaign.pk, now)
        report["campaigns"] += 1
    return report


@transaction.atomic
def messages_retry_failed(*, campaign_id: int, staff_user: AbstractBaseUser | None = None) -> int:
    """Queue the campaign's failed messages again (staff decide; interrupted ones may have
    reached the member already)."""
    campaign = _lock_campaign(campaign_id)
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


# --- Unsubscribe ------------------------------------------------------------------------------

@transaction.atomic
def message_unsubscribe(*, message_id: int, ip_address: str | None = None, now: datetime | None = None) -> Message:
    """The member followed the unsubscribe link of this message: withdraw the consent of its
    channel (an append-only record with source "unsubscribe"). Repeating it changes nothing."""
    from members.services import consent_current, consent_record

    now = now or timezone.now()
    message = Message.objects.select_related("member", "campaign").get(pk=message_id)
    purpose = _purpose(message.channel)
    current = consent_current(message.member)[purpose]
    if current is None or current.granted:
        consent_record(member=message.member, purpose=purpose, granted=False,
                       source=ConsentRecord.Source.UNSUBSCRIBE, ip_address=ip_address,
                       text_version=f"campaign:{message.campaign_id}")
    Message.objects.filter(pk=message.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now)
    message.refresh_from_db()
    return message


# --- Raffles ----------------------------------------------------------------------------------

def raffle_open_problem(campaign: Campaign, now: datetime) -> str | None:
    if campaign.kind != Campaign.Kind.RAFFLE:
        return _("this campaign is not a raffle")
    if campaign.status not in (S.SENDING, S.DONE):
        return _("the raffle has not started")
    if campaign.drawn_at is not None:
        return _("the winners have been drawn")
    if campaign.entry_deadline and now > campaign.entry_deadline:
        return _("the entry period has ended")
    return None


@transaction.atomic
def raffle_enter(*, campaign_id: int, member_id: int, now: datetime | None = None) -> RaffleEntry:
    """Enter a member (once; entering again returns the first entry). Entries that cost points
    take them with the ledger reference raffle:<campaign>:<member>, so a retry never pays twice."""
    from rewards.ledger import member_lock, points_debit

    now = now or timezone.now()
    member = member_lock(member_id)  # serialises a member's double click
    existing = RaffleEntry.objects.filter(campaign_id=campaign_id, member=member).first()
    if existing is not None:
        return existing
    campaign = Campaign.objects.select_related("segment").get(pk=campaign_id)
    if problem := raffle_open_problem(campaign, now):
        raise RaffleClosed(detail=problem)
    if member.status != Member.Status.ACTIVE:
        raise RaffleClosed(detail=_("the membership is not active"))
    if not segment_queryset(campaign.segment, now=now).filter(pk=member.pk).exists():
        raise RaffleClosed(detail=_("this raffle is for invited members"))
    try:
        with transaction.atomic():
            entry = RaffleEntry.objects.create(campaign=campaign, member=member, points_paid=campaign.entry_points,
                                               created_at=now)
    except IntegrityError:  # entered concurrently (the lock makes this unlikely)
        return RaffleEntry.objects.get(campaign=campaign, member=member)
    if campaign.entry_points:
        points_debit(member_id=member.pk, points=campaign.entry_points,
                     reason=_("Raffle entry: %(name)s") % {"name": campaign.name},
                     source="raffle", reference=f"raffle:{campaign.pk}:{member.pk}")
    return entry


def entries_fingerprint(entries: Sequence[tuple[int, int]]) -> str:
    """SHA-256 of the ordered (entry id, member id) list: publish it with the seed."""
    return hashlib.sha256(",".join(f"{entry}:{member}" for entry, member in entries).encode()).hexdigest()


def draw_winners(entries: Sequence[tuple[int, int]], *, seed: str, count: int) -> list[int]:
    """The winning entry ids: a pure function of the ordered entries, the seed and the count.
    Anyone with the three can run it again and get the same winners."""
    ordered = sorted(entries)
    picked = random.Random(seed).sample(ordered, k=min(count, len(ordered)))
    return [entry for entry, _member in picked]


@transaction.atomic
def raffle_draw(*, campaign_id: int, seed: str | None = None, staff_user: AbstractBaseUser | None = None,
                now: datetime | None = None) -> list[RaffleEntry]:
    """Draw once: record the seed and the entries' fingerprint, mark the winners and issue
    their prize vouchers, all in one transaction."""

    now = now or timezone.now()
    campaign = _lock_campaign(campaign_id)
    if campaign.kind != Campaign.Kind.RAFFLE:
        raise RaffleClosed(detail=_("this campaign is not a raffle"))
    if campaign.drawn_at is not None:
        raise RaffleClosed(detail=_("the winners have been drawn"))
    if campaign.entry_deadline and now <= campaign.entry_deadline:
        raise RaffleClosed(detail=_("entries are open until %(deadline)s") % {
            "deadline": timezone.localtime(campaign.entry_deadline).strftime("%d.%m.%Y %H:%M")})
    entries = list(RaffleEntry.objects.filter(campaign=campaign).order_by("pk").values_list("pk", "member_id"))
    seed = seed or secrets.token_hex(16)
    winner_ids = draw_winners(entries, seed=seed, count=campaign.winners_count)
    Campaign.objects.filter(pk=campaign.pk).update(draw_seed=seed, draw_entries_hash=entries_fingerprint(entries),
                                                   drawn_at=now)
    winners = list(RaffleEntry.objects.filter(pk__in=winner_ids).order_by("pk"))
    for entry in winners:
        entry.won = True
        if campaign.prize_id:
            entry.prize = _issue_voucher(entry.member_id, campaign.prize_id)
        entry.save(update_fields=["won", "prize"])
    return winners
