"""Sending a campaign's messages: claim a chunk (consent, address and frequency cap checked
now, incentives issued once), render, deliver, record; unsubscribes. The lifecycle (launch,
prepare, pause, resume, retry) is campaigns.services; see its docstring for how a send works.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from itertools import batched

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.db import connections, router, transaction
from django.db.models import Case, Count, F, Value, When
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from core.errors import LoyaltyError
from core.public import public_url
from core.stored_texts import stored_text
from members.models import ConsentRecord, ConsentState, Member
from members.push import push_device_counts, push_payload, push_send_to_member
from rewards.models import Redemption

from . import links, rendering
from .errors import InvalidTemplate, TestAddressMissing
from .models import Campaign, Message
from .sms import SmsMessage, get_sms_backend, sms_backend_class

S = Campaign.Status
INTERRUPTED = "interrupted: the worker stopped while sending; not sent again (at most once)"

# A statement takes at most 65,535 parameters (they are bound on the server): id lists that
# grow with the audience are sent in pieces of this size.
PARAMETERS_PER_QUERY = 10_000


# --- Sending ----------------------------------------------------------------------------------

@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    skipped: Counter = field(default_factory=Counter)
    not_claimed: int = 0
    stopped: bool = False


CONSENT_PURPOSE = {Campaign.Channel.EMAIL: ConsentRecord.Purpose.EMAIL, Campaign.Channel.SMS: ConsentRecord.Purpose.SMS,
                   Campaign.Channel.PUSH: ConsentRecord.Purpose.PUSH}


def _purpose(channel: str) -> str:
    return CONSENT_PURPOSE[channel]


def _address(member: Member, channel: str) -> str:
    """Where the message goes; for push the member's devices (counted by the claim into
    `push_devices`): a member without one has no address."""
    if channel == Campaign.Channel.PUSH:
        devices = getattr(member, "push_devices", 0)
        return f"push: {devices}" if devices else ""
    return (member.email if channel == Campaign.Channel.EMAIL else member.phone).strip()


# The frequency cap is shared: other apps that write to members (survey invitations) count their
# contacts here, registered in their AppConfig.ready(): (member ids, since) -> contacts per member.
ContactCounter = Callable[[Iterable[int], datetime], Counter]
contact_counters: list[ContactCounter] = []


def _recent_claims(member_ids: Iterable[int], now: datetime) -> Counter:
    """Messages in flight or sent to each member within the cap window (one query for a chunk),
    plus the contacts of the registered counters."""
    member_ids = list(member_ids)
    since = now - timedelta(days=settings.LOYALTY_CAMPAIGN_CAP_DAYS)
    rows = (Message.objects.filter(member_id__in=member_ids, status__in=[Message.Status.SENDING, Message.Status.SENT],
                                   claimed_at__gte=since)
            .order_by().values("member_id").annotate(n=Count("pk")).values_list("member_id", "n"))
    counts = Counter(dict(rows))
    for count_contacts in contact_counters:
        counts.update(count_contacts(member_ids, since))
    return counts


def members_over_cap(member_ids: Iterable[int], *, now: datetime | None = None) -> set[int]:
    """The members who had as many marketing contacts (campaign messages, survey invitations)
    in the cap window as LOYALTY_CAMPAIGN_CAP_MESSAGES allows (none when the cap is off)."""
    limit = settings.LOYALTY_CAMPAIGN_CAP_MESSAGES
    if not limit:
        return set()
    return {member_id for member_id, count in _recent_claims(member_ids, now or timezone.now()).items()
            if count >= limit}


def _effective_consents(member_ids: Iterable[int], purposes: Iterable[str]) -> set[tuple[int, str]]:
    """(member, purpose) pairs whose latest consent record is effective: read from
    members.ConsentState, as the segment that chose the members counts them (one index scan for a
    chunk instead of every member's consent history; the triggers keep it within this transaction)."""
    return set(ConsentState.objects.filter(member_id__in=list(member_ids), purpose__in=set(purposes), effective=True)
               .values_list("member_id", "purpose"))


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
    if any(message.channel == Campaign.Channel.PUSH for message in messages):
        devices = push_device_counts(members)
        for member in members.values():
            member.push_devices = devices.get(member.pk, 0)
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
                          reason=stored_text("campaign-bonus", name=campaign.name),
                          source="campaign", reference=f"campaign:{message.pk}")
            message.bonus_points = campaign.bonus_points
        if campaign.reward_id and message.redemption_id is None:
            try:
                with transaction.atomic():
                    message.redemption = incentive_voucher_issue(message.member_id, campaign.reward_id)
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


def incentive_voucher_issue(member_id: int, reward_id: int) -> Redemption:
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
        if extras.raffle_url and extras.raffle_url not in body:
            # Checked on save and at launch with sample values; a condition on this member's
            # data can still hide it, and an invitation without its link is no invitation.
            raise InvalidTemplate(detail=rendering.raffle_link_missing_text())
    return subject, body


def messages_send_to_self(*, campaign_id: int, staff_user) -> int:
    """Each variant (German, and English where it has an English text) rendered with the sample
    member values and e-mailed to the staff user's own address, and to no one else: no Message
    row, no member, no consent or frequency cap involved. Returns the number of e-mails sent."""
    address = (getattr(staff_user, "email", "") or "").strip()
    if not address:
        raise TestAddressMissing()
    campaign = Campaign.objects.get(pk=campaign_id)
    emails = []
    for variant in campaign.variants.order_by("pk"):
        for language in ("de", "en") if variant.body_en.strip() else ("de",):
            with translation.override(language):
                subject_template, body_template = variant.texts_for(language)
                subject = " ".join(rendering.render_text(subject_template, rendering.CONTEXT_HELP).split())
                body = rendering.render_text(body_template, rendering.CONTEXT_HELP).strip()
                prefix = _("[Test, variant %(variant)s, %(language)s]") % {"variant": variant.name,
                                                                           "language": language.upper()}
            emails.append(EmailMessage(subject=f"{prefix} {subject}".strip(), body=body + "\n", to=[address]))
    if emails:
        with get_connection() as connection:
            connection.send_messages(emails)
    return len(emails)


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
    elif message.channel == Campaign.Channel.PUSH:
        sent = _push(message, member, subject, body)
    else:
        sent = channels.sms().send_messages([SmsMessage(to=message.to_address, body=body,
                                                        reference=f"campaign-message-{message.pk}")])
    if not sent:
        raise RuntimeError("the backend did not accept the message")


def _push(message: Message, member: Member, subject: str, body: str) -> int:
    """To each of the member's devices; sent when at least one push service took it. Devices
    the push service says are gone (404/410) are deleted by members.push."""
    with translation.override(member.language or settings.LANGUAGE_CODE):
        url = public_url(reverse("portal:dashboard"))
    payload = push_payload(title=subject or "Treuepunkt", body=body, url=url, tag=f"campaign-{message.campaign_id}")
    results = push_send_to_member(message.member_id, payload)
    delivered = sum(result.delivered for result in results)
    if not delivered:
        errors = "; ".join(result.error or f"gone ({result.status})" for result in results) or "no device left"
        raise RuntimeError(f"no push service took the message: {errors}")
    return delivered


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
        finish_if_complete(campaign_id, fixed_now or timezone.now())
    return report


def _may_send(message_ids: Sequence[int]) -> bool:
    """Every campaign of the chunk is still sending (paused or cancelled: the batch stops)."""
    statuses = set(Campaign.objects.filter(messages__pk__in=message_ids).order_by().values_list("status", flat=True)
                   .distinct())
    return statuses <= {S.SENDING, S.ACTIVE}


def finish_if_complete(campaign_id: int, now: datetime) -> bool:
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
    if channel == Campaign.Channel.PUSH:
        return False  # a push service has no idempotency key: an interrupted push is not repeated
    backend = import_string(settings.EMAIL_BACKEND) if channel == Campaign.Channel.EMAIL else sms_backend_class()
    return bool(getattr(backend, "idempotent_delivery", False))


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


