"""Rewards, vouchers, stamp cards and cashback: the services.

- Lock order everywhere: the member row, then the reward row, then the voucher. Stock and
  balance are checked after the locks and changed in the same transaction, so fifty members
  racing for the last unit get exactly one voucher and no balance goes below zero.
- Points move only through `rewards.ledger.post_entry` (kind REDEEM when a voucher is
  issued, REFUND when it is cancelled or expires with a refund), referenced by the voucher's
  code: (source, reference) is unique in the ledger, so a voucher is paid and refunded once.
- A voucher's status changes by compare-and-set (`filter(status=ISSUED).update(...)`): two
  tills consuming one code at the same moment cannot both succeed, and a voucher cancelled
  while a till consumes it is either cancelled or used, never both.
- A till sees one answer for every code it may not use (unknown, mistyped, used, cancelled,
  expired, not yet valid): nothing to tell a guesser which codes exist. Failures are counted
  per partner and store in fixed one-minute windows in the shared cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.events import publish
from core.ratelimit import Window, current_window, window_count_up
from core.stored_texts import both_languages, stored_text
from members.models import Member
from partners.models import Partner, Store
from rewards.errors import (
    InsufficientPoints,
    RewardUnavailable,
    StoreNotOfPartner,
    VoucherInvalid,
    VoucherNotCancellable,
    VoucherRateLimited,
)

from . import codes, donations, eligibility, rule_cache
from .earning import to_eur
from .events import VoucherIssued, VoucherUsed
from .ledger import member_lock, member_lock_live, post_entry, require_active
from .models import (
    Donation,
    PointEntry,
    Purchase,
    Redemption,
    Reward,
    StampCard,
    StampCardProgram,
    StampCredit,
)

# --- Redeeming ---------------------------------------------------------------------------------


def reward_unavailable_reason(reward: Reward, member: Member, *, at: datetime | None = None,
                              redeemed_by_member: int | None = None, catalogue: bool = True) -> str | None:
    """Why `member` cannot have `reward` now (None: they can, points aside).

    Stock and the active flag hold for every voucher. The catalogue's own conditions (listed,
    redeemable window, minimum tier, limit per member) apply to what a member picks; a stamp
    card, cashback or a campaign gives the reward its programme promised. The rules themselves
    are in rewards.eligibility."""
    return eligibility.unavailable_reason(
        reward, member, at=at, redeemed_by_member=redeemed_by_member,
        scopes=eligibility.CATALOGUE_PICK if catalogue else eligibility.EVERY_VOUCHER)


def _issue(member: Member, reward_id: int, *, points: int | None, source: str, catalogue: bool,
           partner_id: int | None = None) -> Redemption:
    """Issue one voucher for `points` (None: the reward's price, read under its lock). The
    caller holds `member`'s row lock; the reward is locked here, after the member (the one
    lock order), so stock, limits and balance are all read under both locks."""
    reward = (Reward.objects.select_for_update(of=("self",)).select_related("min_tier", "cause")
              .get(pk=reward_id))
    if reason := reward_unavailable_reason(reward, member, catalogue=catalogue):
        raise RewardUnavailable(detail=reason)
    points = reward.points_cost if points is None else points
    if points > member.points_balance:
        raise InsufficientPoints(available=member.points_balance, requested=points)
    if reward.stock is not None:
        Reward.objects.filter(pk=reward.pk).update(stock=F("stock") - 1)
    if reward.kind == Reward.Kind.DONATION:  # a donation, not a voucher: no code, no expiry
        return donations.donation_record(member, reward, points=points, source=source, partner_id=partner_id)
    now = timezone.now()
    redemption = Redemption.objects.create(
        member=member, reward=reward, points=points, code=codes.generate_code(), source=source, issued_at=now,
        expires_at=now + timedelta(days=max(1, reward.voucher_valid_days)),
    )
    if points:
        post_entry(member, kind=PointEntry.Kind.REDEEM, points=-points, source="redemption",
                   reference=redemption.code, reason=stored_text("voucher", reward=both_languages(reward, "name")),
                   redemption_id=redemption.pk, partner_id=partner_id)
    publish(VoucherIssued(member_id=member.pk, partner_id=partner_id, redemption_id=redemption.pk,
                          reward_id=reward.pk, points=points, source=source, code=redemption.display_code))
    return redemption


@transaction.atomic
def redemption_create(*, member_id: int, reward_id: int, partner_id: int | None = None) -> Redemption:
    """A member spends points on a catalogue reward and gets its voucher (at the till of
    `partner_id`, through the API; None: in the portal)."""
    member = member_lock(member_id)
    require_active(member)
    return _issue(member, reward_id, points=None, source=Redemption.Source.CATALOGUE, catalogue=True,
                  partner_id=partner_id)


@transaction.atomic
def redemption_issue(*, member_id: int, reward_id: int, source: str, points: int = 0) -> Redemption:
    """A programme gives a member a reward (stamp card, cashback, campaign, goodwill): no
    catalogue conditions, `points` taken from the balance (usually none), stock respected."""
    if points < 0:
        raise ValueError("points must not be negative")
    member = member_lock(member_id)
    require_active(member)
    return _issue(member, reward_id, points=points, source=source, catalogue=False)


@transaction.atomic
def redemption_cancel(*, redemption_id: int) -> Redemption:
    """Cancel a voucher that is still usable: its points come back and the stock with them.

    A voucher past its expiry date is not cancellable even before the expiry job marks it:
    otherwise cancelling would refund what expiry (by `LOYALTY_REFUND_EXPIRED_VOUCHERS`) keeps."""
    owner_id = Redemption.objects.values_list("member_id", flat=True).get(pk=redemption_id)
    member = member_lock_live(owner_id)
    now = timezone.now()
    changed = Redemption.objects.filter(pk=redemption_id, status=Redemption.Status.ISSUED,
                                        expires_at__gte=now).update(status=Redemption.Status.CANCELLED,
                                                                    cancelled_at=now)
    if not changed:
        raise VoucherNotCancellable()
    redemption = Redemption.objects.select_related("reward").get(pk=redemption_id)
    _refund(member, redemption, reason="voucher-cancelled")
    if redemption.reward.stock is not None:
        Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)
    return redemption


def _refund(member: Member, redemption: Redemption, *, reason: str) -> None:
    """`reason`: the key of the ledger text (core.stored_texts)."""
    # (source, reference) is unique in the ledger: a voucher can be refunded once, whatever path.
    if redemption.points:
        post_entry(member, kind=PointEntry.Kind.REFUND, points=redemption.points, source="redemption-refund",
                   reference=redemption.code,
                   reason=stored_text(reason, reward=both_languages(redemption.reward, "name")),
                   redemption_id=redemption.pk)


def redemptions_expire_due(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """The beat job: unused vouchers past their date become EXPIRED. Returns how many.

    With `LOYALTY_REFUND_EXPIRED_VOUCHERS` their points come back, one short transaction per
    voucher (each locks its member); without, it is one UPDATE per batch. The stock does not
    come back either way: what a limited reward was allotted for (an evening, a month's
    budget) is over by the time its vouchers expire."""
    now = now or timezone.now()
    due = Redemption.objects.filter(status=Redemption.Status.ISSUED, expires_at__lt=now).order_by("pk")
    expired = 0
    if not settings.LOYALTY_REFUND_EXPIRED_VOUCHERS:
        while ids := list(due.values_list("pk", flat=True)[:batch_size]):
            # Compare-and-set again: a till may have used one since the ids were read.
            expired += Redemption.objects.filter(pk__in=ids, status=Redemption.Status.ISSUED,
                                                 expires_at__lt=now).update(status=Redemption.Status.EXPIRED)
        return expired
    for redemption_id in list(due.values_list("pk", flat=True)):
        expired += _expire_with_refund(redemption_id, now)
    return expired


@transaction.atomic
def _expire_with_refund(redemption_id: int, now: datetime) -> bool:
    owner_id = Redemption.objects.values_list("member_id", flat=True).get(pk=redemption_id)
    member = member_lock_live(owner_id)
    changed = Redemption.objects.filter(pk=redemption_id, status=Redemption.Status.ISSUED,
                                        expires_at__lt=now).update(status=Redemption.Status.EXPIRED)
    if changed:
        _refund(member, Redemption.objects.select_related("reward").get(pk=redemption_id),
                reason="voucher-expired")
    return bool(changed)


@transaction.atomic
def reward_stock_change(*, reward_id: int, change: int = 0, unlimited: bool = False) -> Reward:
    """Staff restock a reward (or take stock away) relative to what is left now.

    A form that showed "5" while two vouchers were redeemed must not write 5 back: the change
    is applied to the locked row. Taking away more than is left leaves none. On an unlimited
    reward, `change` sets the stock it starts with."""
    reward = Reward.objects.select_for_update(of=("self",)).get(pk=reward_id)
    if unlimited:
        stock = None
    elif reward.stock is None:
        stock = max(0, change)
    else:
        stock = max(0, reward.stock + change)
    if stock != reward.stock:
        Reward.objects.filter(pk=reward.pk).update(stock=stock)
        reward.stock = stock
    return reward


# --- Validating and consuming at a till ----------------------------------------------------------

FAILURE_LIMIT = 10  # invalid codes per store (or per partner without a store) and window
PARTNER_FAILURE_LIMIT = 50  # invalid codes of all a partner's tills together and window
FAILURE_WINDOW = 60  # seconds; fixed windows, counted in the shared cache


def _failure_counters(partner: Partner, store: Store | None, now: datetime) -> tuple[list[tuple[str, int]], Window]:
    """The cache keys to count in and their limits, and the window (core.ratelimit)."""
    window = current_window(FAILURE_WINDOW, now.timestamp())
    base = window.key(f"loyalty:voucher-failures:{partner.pk}")
    return [(f"{base}:{store.pk if store else '-'}", FAILURE_LIMIT), (f"{base}:all", PARTNER_FAILURE_LIMIT)], window


def _check_rate_limit(partner: Partner, store: Store | None, now: datetime) -> None:
    keys, window = _failure_counters(partner, store, now)
    counts = cache.get_many([key for key, _limit in keys])
    if any(counts.get(key, 0) >= limit for key, limit in keys):
        raise VoucherRateLimited(seconds=window.seconds_left)


def _record_failure(partner: Partner, store: Store | None, now: datetime) -> None:
    keys, _window = _failure_counters(partner, store, now)
    for key, _limit in keys:
        window_count_up(key, FAILURE_WINDOW)


def _usable(now: datetime):
    """What a till may take: issued, inside its validity, of a member who is not blocked (nor
    erased: erasure cancels the vouchers, this keeps it so should one be left)."""
    return Redemption.objects.filter(status=Redemption.Status.ISSUED, issued_at__lte=now, expires_at__gte=now).exclude(
        member__status__in=[Member.Status.BLOCKED, Member.Status.ERASED])


def _checked_lookup(code: str, partner: Partner, store: Store | None, now: datetime) -> Redemption:
    if store is not None and store.partner_id != partner.pk:
        raise StoreNotOfPartner()
    _check_rate_limit(partner, store, now)
    normalized = codes.normalize(code or "")  # a mistyped code never reaches the database
    redemption = (_usable(now).select_related("reward", "member").filter(code=normalized).first()
                  if normalized else None)
    if redemption is None:
        _record_failure(partner, store, now)
        raise VoucherInvalid()
    return redemption


def voucher_validate(*, code: str, partner: Partner, store: Store | None = None) -> Redemption:
    """What a till asks before it takes a voucher; changes nothing. Every kind of invalid code
    gives the same answer, and too many invalid codes from one partner or store are refused
    for the rest of the minute (`VoucherRateLimited` with the seconds to wait)."""
    return _checked_lookup(code, partner, store, timezone.now())


@transaction.atomic
def voucher_consume(*, code: str, partner: Partner, store: Store | None = None) -> Redemption:
    """Use a voucher once: compare-and-set from ISSUED to USED. Of two tills sending the same
    code at the same moment, one gets the voucher and the other `VoucherInvalid`."""
    now = timezone.now()
    redemption = _checked_lookup(code, partner, store, now)
    # Conditions on the voucher's own row only: with a join Django would write
    # `WHERE id IN (SELECT …)`, and PostgreSQL's re-check after waiting for the row lock would
    # then not see that the other till has just set USED.
    changed = Redemption.objects.filter(
        pk=redemption.pk, status=Redemption.Status.ISSUED, issued_at__lte=now, expires_at__gte=now,
    ).update(status=Redemption.Status.USED, used_at=now, used_by_partner=partner, used_at_store=store)
    if not changed:  # another till (or a cancel) got there first
        _record_failure(partner, store, now)
        raise VoucherInvalid()
    redemption.status, redemption.used_at = Redemption.Status.USED, now
    redemption.used_by_partner, redemption.used_at_store = partner, store
    publish(VoucherUsed(member_id=redemption.member_id, partner_id=partner.pk, redemption_id=redemption.pk,
                        reward_id=redemption.reward_id, store_id=store.pk if store is not None else None,
                        store_code=store.code if store is not None else ""))
    return redemption


# --- Stamp cards ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StampOutcome:
    program: StampCardProgram
    stamps: int
    vouchers: list[Redemption]


def stamps_for(program: StampCardProgram, purchase: Purchase, lines: Sequence) -> int:
    qualifying = [line for line in lines
                  if not program.category or line.category.casefold() == program.category.casefold()]
    if not qualifying:
        return 0
    if program.min_amount is not None:
        spent = to_eur(sum((line.amount for line in qualifying), Decimal(0)), purchase.currency)
        if spent < program.min_amount:
            return 0
    if program.mode == StampCardProgram.Mode.PER_ITEM:
        return sum(line.quantity for line in qualifying)
    return 1


@transaction.atomic
def stamp_cards_apply_purchase(*, purchase: Purchase, lines: Sequence | None = None) -> list[StampOutcome]:
    """Stamp the member's cards for a purchase (called by `purchase_record` in its transaction).

    A purchase stamps each programme once (`StampCredit` is unique per purchase and
    programme), so a replay stamps nothing. A full card issues its reward by itself and a new
    card takes the extra stamps. `lines` are the purchase's lines (read from it if not given)."""
    programs = rule_cache.stamp_programs()
    if not programs:
        return []
    member = member_lock(purchase.member_id)
    if member.status != Member.Status.ACTIVE:
        return []
    lines = list(purchase.lines.all()) if lines is None else lines
    outcomes = []
    for program in programs:
        stamps = stamps_for(program, purchase, lines)
        if stamps <= 0:
            continue
        _credit, created = StampCredit.objects.get_or_create(purchase=purchase, program=program,
                                                             defaults={"stamps": stamps})
        if not created:
            continue  # this purchase already stamped this programme
        # Every writer of a member's cards holds the member's lock: a plain read-modify-write is safe.
        card, _created = StampCard.objects.get_or_create(member=member, program=program, completed_at__isnull=True)
        card.stamps += stamps
        card.save(update_fields=["stamps"])
        outcomes.append(StampOutcome(program, stamps, _complete_full_cards(member, program, card)))
    return outcomes


def _complete_full_cards(member: Member, program: StampCardProgram, card: StampCard) -> list[Redemption]:
    """While the open card is full: issue the reward, close the card, open the next with the
    overflow. If the reward can't be issued now the card keeps its stamps and waits; the
    purchase that filled it is recorded all the same."""
    vouchers = []
    while card.stamps >= program.stamps_needed:
        try:  # raised before anything is written: nothing to roll back
            voucher = _issue(member, program.reward_id, points=0, source=Redemption.Source.STAMP_CARD,
                             catalogue=False)
        except RewardUnavailable:
            break
        overflow = card.stamps - program.stamps_needed
        card.stamps, card.completed_at, card.redemption = program.stamps_needed, timezone.now(), voucher
        card.save(update_fields=["stamps", "completed_at", "redemption"])
        vouchers.append(voucher)
        card = StampCard.objects.create(member=member, program=program, stamps=overflow)
    return vouchers


def stamp_cards_issue_waiting() -> int:
    """The beat job: full cards that waited for their reward (sold out, switched off) get it
    now if it can be issued. Returns how many vouchers were issued."""
    waiting = (StampCard.objects.filter(completed_at__isnull=True, program__active=True,
                                        stamps__gte=F("program__stamps_needed"))
               .values_list("pk", flat=True))
    return sum(_stamp_card_complete(card_id) for card_id in list(waiting))


@transaction.atomic
def _stamp_card_complete(card_id: int) -> int:
    owner_id = StampCard.objects.values_list("member_id", flat=True).get(pk=card_id)
    member = member_lock(owner_id)
    card = StampCard.objects.select_related("program").get(pk=card_id)
    if card.completed_at is not None or member.status != Member.Status.ACTIVE:
        return 0
    return len(_complete_full_cards(member, card.program, card))


# --- Merging two members' vouchers and cards -----------------------------------------------------

def member_rewards_merge(*, survivor: Member, duplicate: Member) -> None:
    """Called by the `MembersMerged` subscriber with both members locked: the duplicate's
    vouchers, donations and stamp cards become the survivor's; an open card's stamps are added to the
    survivor's open card of the same programme (which may fill it and issue its reward)."""
    Redemption.objects.filter(member=duplicate).update(member=survivor)
    Donation.objects.filter(member=duplicate).update(member=survivor)
    StampCard.objects.filter(member=duplicate, completed_at__isnull=False).update(member=survivor)
    for card in StampCard.objects.filter(member=duplicate, completed_at__isnull=True).select_related("program"):
        target = StampCard.objects.filter(member=survivor, program=card.program, completed_at__isnull=True).first()
        if target is None:
            card.member = survivor
            card.save(update_fields=["member"])
            target = card
        else:
            target.stamps += card.stamps
            card.delete()  # an open card holds nothing but its stamps, now on the survivor's card
            target.save(update_fields=["stamps"])
        if survivor.status == Member.Status.ACTIVE:
            _complete_full_cards(survivor, card.program, target)


def member_vouchers_cancel(*, member_ids: list[int]) -> int:
    """Cancel the people's unused vouchers: an erased member's voucher must not pass a till.
    Still-valid ones through `redemption_cancel` (points and stock come back, as on any
    cancellation); ones past their date that the expiry job has not reached yet are just closed."""
    now = timezone.now()
    open_vouchers = Redemption.objects.filter(member_id__in=member_ids, status=Redemption.Status.ISSUED)
    cancelled = 0
    for redemption_id in open_vouchers.filter(expires_at__gte=now).order_by("pk").values_list("pk", flat=True):
        redemption_cancel(redemption_id=redemption_id)
        cancelled += 1
    cancelled += open_vouchers.update(status=Redemption.Status.CANCELLED, cancelled_at=now)
    return cancelled


# --- Cashback ----------------------------------------------------------------------------------

CASHBACK_MAX_VOUCHERS_PER_RUN = 10  # a balance far above the threshold converts over several purchases


@transaction.atomic
def cashback_apply(*, member_id: int) -> list[Redemption]:
    """After earning: while the balance is at or above the programme's threshold, turn points
    into its voucher, and tell the member by e-mail after commit (in their language)."""
    program = rule_cache.cashback_program()
    if program is None:
        return []
    member = member_lock(member_id)
    if member.status != Member.Status.ACTIVE:
        return []
    cost = program.voucher_points
    issued: list[Redemption] = []
    while (member.points_balance >= max(program.threshold_points, cost)
           and len(issued) < CASHBACK_MAX_VOUCHERS_PER_RUN):
        try:  # raised before anything is written: nothing to roll back
            issued.append(_issue(member, program.reward_id, points=cost, source=Redemption.Source.CASHBACK,
                                 catalogue=False))
        except RewardUnavailable:
            break  # sold out or switched off: the points stay, nothing is lost
    if issued and member.email:
        ids = [voucher.pk for voucher in issued]
        transaction.on_commit(lambda: _send_cashback_mail(member.pk, ids))
    return issued


def _send_cashback_mail(member_id: int, redemption_ids: list[int]) -> None:
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils import translation

    member = Member.objects.get(pk=member_id)
    if not member.email:
        return
    vouchers = list(Redemption.objects.filter(pk__in=redemption_ids).select_related("reward").order_by("pk"))
    with translation.override(member.language):
        context = {"member": member, "vouchers": vouchers}
        send_mail(subject=_("Your points became a voucher"),
                  message=render_to_string("emails/cashback.txt", context),
                  from_email=None, recipient_list=[member.email])


# --- Reads: the member discount and the catalogue ------------------------------------------------

def member_discount_percent(member: Member) -> Decimal:
    """The "Treuekarte" discount a till grants: the member's tier discount (none for a member
    who is blocked, closed, merged or erased)."""
    if member.status != Member.Status.ACTIVE or member.tier_id is None:
        return Decimal("0")
    return member.tier.discount_percent


def catalogue_for(member: Member | None) -> list[tuple[Reward, str | None]]:
    """The catalogue, each reward with why the member can't have it (None: they can); what
    they can afford first. Three queries, whatever the catalogue's size."""
    rewards = list(eligibility.listed().select_related("min_tier", "cause"))
    if member is None:
        return [(reward, None) for reward in rewards]
    reasons = eligibility.unavailable_reasons(rewards, member, scopes=eligibility.MEMBER_VIEW)
    rows = [(reward, reasons[reward.pk]) for reward in rewards]
    rows.sort(key=lambda row: (row[1] is not None, row[0].points_cost))
    return rows
