"""Raffles: members enter a campaign's draw (optionally paying points), staff draw the winners,
the winners are told by e-mail and in the portal.

The draw is commit-and-reveal, so nobody (staff included) can pick the winners:
- when the raffle is scheduled or opened (`raffle_seed_commit`, called by campaign_launch) a
  random seed is drawn with `secrets` and only its SHA-256 is published: in the console, on
  the public raffle page (`campaigns:raffle_proof`) and in the portal. The database refuses to
  change the seed or its hash from then on (migration 0004's trigger);
- entries are tickets: the entry's id is its public number, the member sees their own;
- after entries close, `raffle_draw` fingerprints the ticket list (SHA-256 of the sorted
  numbers, one per line: the text file the raffle page publishes), reveals the seed and takes
  the `winners_count` tickets with the lowest SHA-256("seed:fingerprint:ticket"). Anyone can
  check the seed against the hash published before, the list against the fingerprint and
  recompute the winners with any SHA-256 tool; no random number generator is involved whose
  algorithm could change between versions.
Raffles drawn before commitments existed keep their recorded proof (`legacy_*`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.errors import LoyaltyError
from core.stored_texts import stored_text
from core.tasks import enqueue
from members.models import Member

from . import links
from .errors import RaffleClosed
from .models import Campaign, RaffleEntry
from .segments import segment_queryset
from .sending import incentive_voucher_issue
from .services import campaign_lock

logger = logging.getLogger(__name__)
S = Campaign.Status
OPEN_STATUSES = (S.SENDING, S.DONE)
# Unsent prize notices (a failed send, a lost task) are queued again by the sweeper for this long.
NOTIFY_RETRY_DAYS = 7


# --- Commitment -------------------------------------------------------------------------------

def seed_hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def raffle_seed_commit(campaign: Campaign, now: datetime) -> bool:
    """Draw the raffle's seed and publish its hash (once; the caller holds the campaign lock).
    Returns whether it was committed now."""
    if campaign.kind != Campaign.Kind.RAFFLE or campaign.draw_seed_hash:
        return False
    seed = secrets.token_hex(16)
    fields = {"draw_seed": seed, "draw_seed_hash": seed_hash(seed), "seed_committed_at": now}
    if not Campaign.objects.filter(pk=campaign.pk, draw_seed_hash="").update(**fields):
        return False
    for name, value in fields.items():
        setattr(campaign, name, value)
    return True


# --- Entering ---------------------------------------------------------------------------------

def raffle_open_problem(campaign: Campaign, now: datetime) -> str | None:
    if campaign.kind != Campaign.Kind.RAFFLE:
        return _("this campaign is not a raffle")
    if campaign.status not in OPEN_STATUSES:
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
                     reason=stored_text("raffle-entry", name=campaign.name),
                     source="raffle", reference=f"raffle:{campaign.pk}:{member.pk}")
    return entry


# --- The draw: pure functions anyone can run again ----------------------------------------------

def tickets_text(tickets: Sequence[int]) -> str:
    """The published ticket list: the numbers in ascending order, one per line."""
    return "".join(f"{ticket}\n" for ticket in sorted(tickets))


def tickets_fingerprint(tickets: Sequence[int]) -> str:
    """SHA-256 of `tickets_text` (what `sha256sum` prints for the downloaded list)."""
    return hashlib.sha256(tickets_text(tickets).encode()).hexdigest()


def ticket_score(ticket: int, *, seed: str, fingerprint: str) -> str:
    return hashlib.sha256(f"{seed}:{fingerprint}:{ticket}".encode()).hexdigest()


def draw_winners(tickets: Sequence[int], *, seed: str, fingerprint: str, count: int) -> list[int]:
    """The winning tickets: the `count` with the lowest score, a pure function of the seed and
    the ticket list (whose fingerprint is part of every score)."""
    ranked = sorted(tickets, key=lambda ticket: (ticket_score(ticket, seed=seed, fingerprint=fingerprint), ticket))
    return ranked[:count]


def legacy_entries_fingerprint(entries: Sequence[tuple[int, int]]) -> str:
    """The proof of raffles drawn before seeds were committed: SHA-256 of (entry:member, …)."""
    return hashlib.sha256(",".join(f"{entry}:{member}" for entry, member in entries).encode()).hexdigest()


def legacy_draw_winners(entries: Sequence[tuple[int, int]], *, seed: str, count: int) -> list[int]:
    ordered = sorted(entries)
    picked = random.Random(seed).sample(ordered, k=min(count, len(ordered)))
    return [entry for entry, _member in picked]


# --- Drawing ----------------------------------------------------------------------------------

def raffle_draw_problem(campaign: Campaign, now: datetime) -> str | None:
    """Why the raffle can't be drawn now (None: it can)."""
    if campaign.kind != Campaign.Kind.RAFFLE:
        return _("this campaign is not a raffle")
    if campaign.drawn_at is not None:
        return _("the winners have been drawn")
    if campaign.status not in OPEN_STATUSES or not campaign.draw_seed_hash:
        return _("the raffle has not started")
    if campaign.entry_deadline is None:
        return _("the raffle has no entry deadline")
    if now <= campaign.entry_deadline:
        return _("entries are open until %(deadline)s") % {
            "deadline": timezone.localtime(campaign.entry_deadline).strftime("%d.%m.%Y %H:%M")}
    return None


@transaction.atomic
def raffle_draw(*, campaign_id: int, staff_user: AbstractBaseUser | None = None,
                now: datetime | None = None) -> list[RaffleEntry]:
    """Draw once, after entries have closed: fingerprint the tickets, reveal the committed seed,
    mark the winners and issue their prize vouchers in one transaction; the winners' e-mails
    are queued for after the commit."""
    from . import tasks

    now = now or timezone.now()
    campaign = campaign_lock(campaign_id)
    if problem := raffle_draw_problem(campaign, now):
        raise RaffleClosed(detail=problem)
    tickets = list(RaffleEntry.objects.filter(campaign=campaign).values_list("pk", flat=True))
    fingerprint = tickets_fingerprint(tickets)
    winner_ids = draw_winners(tickets, seed=campaign.draw_seed, fingerprint=fingerprint,
                              count=campaign.winners_count)
    Campaign.objects.filter(pk=campaign.pk).update(draw_entries_hash=fingerprint, drawn_at=now)
    winners = list(RaffleEntry.objects.filter(pk__in=winner_ids).order_by("pk"))
    for entry in winners:
        entry.won = True
        if campaign.prize_id:
            entry.prize = _prize_issue(entry, campaign.prize_id)
        entry.save(update_fields=["won", "prize"])
    if winners:
        enqueue(tasks.notify_raffle_winners, campaign.pk)
    return winners


def _prize_issue(entry: RaffleEntry, reward_id: int):
    """The winner's voucher. A ticket drawn stays drawn (the draw must stay checkable), but a
    member no longer active or a prize out of stock gets no voucher; the console shows the
    winner without one, and staff decide."""
    try:
        with transaction.atomic():
            return incentive_voucher_issue(entry.member_id, reward_id)
    except LoyaltyError as error:
        logger.warning("raffle entry %s won but got no prize voucher: %s", entry.pk, error)
        return None


# --- Telling the winners ----------------------------------------------------------------------

def raffle_winners_notify(*, campaign_id: int, connection=None) -> int:
    """E-mail every winner of the raffle not told yet (the task's body). Returns the number sent."""
    ids = RaffleEntry.objects.filter(campaign_id=campaign_id, won=True, notified_at__isnull=True) \
        .order_by("pk").values_list("pk", flat=True)
    return sum(raffle_winner_notify(entry_id=entry_id, connection=connection) for entry_id in ids)


def raffle_winner_notify(*, entry_id: int, connection=None) -> bool:
    """The prize notice, at most once: `notified_at` is claimed (compare-and-set) before the
    e-mail goes out, so a redelivered task or the sweeper finds nothing to do. A prize notice
    is transactional (the member entered and won): it needs an address, not marketing consent.
    A send that fails releases the claim, so the sweeper tries again."""
    from django.core.mail import EmailMessage, get_connection
    from django.template.loader import render_to_string

    entry = (RaffleEntry.objects.select_related("member", "campaign", "prize__reward")
             .filter(pk=entry_id, won=True, notified_at__isnull=True).first())
    if entry is None:
        return False
    member = entry.member
    if not member.email or member.status in (Member.Status.ERASED, Member.Status.MERGED):
        return False
    if not RaffleEntry.objects.filter(pk=entry.pk, notified_at__isnull=True).update(notified_at=timezone.now()):
        return False
    with translation.override(member.language or settings.LANGUAGE_CODE):
        context = {"member": member, "entry": entry, "campaign": entry.campaign, "voucher": entry.prize,
                   "portal_url": links.absolute_url(reverse("raffles:portal")),
                   "proof_url": links.raffle_proof_url(entry.campaign_id)}
        email = EmailMessage(subject=_("You have won: %(raffle)s") % {"raffle": entry.campaign.name},
                             body=render_to_string("emails/raffle_won.txt", context), to=[member.email],
                             connection=connection or get_connection())
    try:
        sent = bool(email.send())
    except Exception:
        logger.exception("prize notice for raffle entry %s not sent; the sweeper tries again", entry.pk)
        sent = False
    if not sent:
        RaffleEntry.objects.filter(pk=entry.pk).update(notified_at=None)
    return sent


def raffle_notices_resume(*, now: datetime | None = None) -> int:
    """Sweeper: queue the notices of recent draws that are still unsent (a lost task, a failed
    send). Returns the number of raffles queued."""
    from . import tasks

    now = now or timezone.now()
    campaign_ids = set(RaffleEntry.objects.filter(
        won=True, notified_at__isnull=True, campaign__drawn_at__gte=now - timedelta(days=NOTIFY_RETRY_DAYS),
        member__email__gt="").exclude(member__status__in=[Member.Status.ERASED, Member.Status.MERGED])
        .values_list("campaign_id", flat=True))
    for campaign_id in sorted(campaign_ids):
        enqueue(tasks.notify_raffle_winners, campaign_id)
    return len(campaign_ids)
