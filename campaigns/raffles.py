"""Raffles: members enter a campaign's draw (optionally paying points), staff draw the winners
with a published seed, so anyone can check the draw."""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member

from .errors import RaffleClosed
from .models import Campaign, RaffleEntry
from .segments import segment_queryset
from .sending import incentive_voucher_issue
from .services import campaign_lock

S = Campaign.Status


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
    campaign = campaign_lock(campaign_id)
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
            entry.prize = incentive_voucher_issue(entry.member_id, campaign.prize_id)
        entry.save(update_fields=["won", "prize"])
    return winners
