"""Rewards, vouchers, stamp cards and cashback: the services.

Lock order everywhere: the member row, then the reward row, then the voucher. Stock and
balance are checked after the locks and changed in the same transaction, so fifty members
racing for the last unit get exactly one voucher. Status changes of a voucher are
compare-and-set (`filter(status=ISSUED).update(...)`): two tills consuming one code at the
same moment cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty_site.errors import (
    InsufficientPoints,
    RewardUnavailable,
    VoucherInvalid,
    VoucherNotCancellable,
    VoucherRateLimited,
)
from members.models import Member

from . import codes, rule_cache
from .models import (
    Partner,
    PointEntry,
    Purchase,
    Redemption,
    Reward,
    StampCard,
    StampCardProgram,
    StampCredit,
    Store,
)
from .services import _post_entry, _require_active, member_lock

# --- Redeeming ---------------------------------------------------------------------------------


def reward_unavailable_reason(reward: Reward, member: Member, *, at: datetime | None = None,
                              redeemed_by_member: int | None = None) -> str | None:
    """Why `member` cannot have `reward` now (None: they can, points aside)."""
    at = at or timezone.now()
    if not reward.active:
        return _("it is not available any more")
    if reward.valid_from and at < reward.valid_from:
        return _("it is not available yet")
    if reward.valid_until and at > reward.valid_until:
        return _("it is not available any more")
    if reward.stock is not None and reward.stock <= 0:
        return _("it is sold out")
    if reward.min_tier_id and (member.tier is None or member.tier.rank < reward.min_tier.rank):
        return _("it needs the %(tier)s tier") % {"tier": reward.min_tier.name}
    if reward.limit_per_member is not None:
        if redeemed_by_member is None:
            redeemed_by_member = _redeemed_count(member.pk, reward.pk)
        if redeemed_by_member >= reward.limit_per_member:
            return _("you have reached the limit for this reward")
    return None


def _redeemed_count(member_id: int, reward_id: int) -> int:
    return Redemption.objects.filter(member_id=member_id, reward_id=reward_id).exclude(
        status=Redemption.Status.CANCELLED).count()


@transaction.atomic
def redemption_create(*, member_id: int, reward_id: int, source: str = Redemption.Source.CATALOGUE,
                      free: bool = False) -> Redemption:
    """Spend points on a reward and issue its voucher. `free` issues without taking points
    (stamp cards, campaigns, goodwill); stock and the member's status still apply."""
    member = member_lock(member_id)
    reward = Reward.objects.select_for_update(of=("self",)).select_related("min_tier").get(pk=reward_id)
    _require_active(member)
    if reason := reward_unavailable_reason(reward, member):
        raise RewardUnavailable(detail=reason)
    points = 0 if free else reward.points_cost
    if points > member.points_balance:
        raise InsufficientPoints(available=member.points_balance, requested=points)
    now = timezone.now()
    code = codes.generate_code()
    redemption = Redemption.objects.create(
        member=member, reward=reward, points=points, code=code, source=source, issued_at=now,
        expires_at=now + timedelta(days=reward.voucher_valid_days),
    )
    if points:
        _post_entry(member, kind=PointEntry.Kind.REDEEM, points=-points, source="redemption", reference=code,
                    reason=_("Voucher: %(reward)s") % {"reward": reward.name_de})
    if reward.stock is not None:
        Reward.objects.filter(pk=reward.pk).update(stock=F("stock") - 1)
    return redemption


@transaction.atomic
def redemption_cancel(*, redemption_id: int) -> Redemption:
    """Cancel an unused voucher: its points come back and the stock with them."""
    member_id = Redemption.objects.values_list("member_id", flat=True).get(pk=redemption_id)
    member = member_lock(member_id)
    redemption = Redemption.objects.select_related("reward").get(pk=redemption_id)
    changed = Redemption.objects.filter(pk=redemption.pk, status=Redemption.Status.ISSUED).update(
        status=Redemption.Status.CANCELLED, cancelled_at=timezone.now())
    if not changed:
        raise VoucherNotCancellable()
    _give_back(member, redemption, reason=_("Voucher cancelled: %(reward)s"))
    redemption.refresh_from_db()
    return redemption


def _give_back(member: Member, redemption: Redemption, *, reason: str) -> None:
    if redemption.points:
        _post_entry(member, kind=PointEntry.Kind.REFUND, points=redemption.points, source="redemption-refund",
                    reference=redemption.code, reason=reason % {"reward": redemption.reward.name_de})
    if redemption.reward.stock is not None:
        Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)


def redemptions_expire_due(*, now: datetime | None = None) -> int:
    """The beat job: unused vouchers past their date become EXPIRED; with
    LOYALTY_REFUND_EXPIRED_VOUCHERS their points come back. Returns how many expired."""
    now = now or timezone.now()
    due = Redemption.objects.filter(status=Redemption.Status.ISSUED, expires_at__lt=now)
    expired = 0
    for redemption_id in due.values_list("pk", flat=True).iterator():
        expired += _expire_one(redemption_id, now)
    return expired


@transaction.atomic
def _expire_one(redemption_id: int, now: datetime) -> bool:
    redemption = Redemption.objects.select_related("reward").get(pk=redemption_id)
    member = member_lock(redemption.member_id)
    changed = Redemption.objects.filter(pk=redemption_id, status=Redemption.Status.ISSUED,
                                        expires_at__lt=now).update(status=Redemption.Status.EXPIRED)
    if changed and settings.LOYALTY_REFUND_EXPIRED_VOUCHERS:
        _give_back(member, redemption, reason=_("Voucher expired: %(reward)s"))
    return bool(changed)


# --- Validating and consuming at a till ----------------------------------------------------------

FAILURE_LIMIT = 10  # invalid codes per partner and store
FAILURE_WINDOW = 300  # seconds


def _failure_key(partner: Partner, store: Store | None) -> str:
    return f"loyalty:voucher-failures:{partner.pk}:{store.pk if store else '-'}"


def _check_rate_limit(partner: Partner, store: Store | None) -> None:
    if cache.get(_failure_key(partner, store), 0) >= FAILURE_LIMIT:
        raise VoucherRateLimited(seconds=FAILURE_WINDOW)


def _record_failure(partner: Partner, store: Store | None) -> None:
    key = _failure_key(partner, store)
    if cache.add(key, 1, timeout=FAILURE_WINDOW):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=FAILURE_WINDOW)


def _find_valid(code: str, now: datetime) -> Redemption | None:
    normalized = codes.normalize(code)
    if normalized is None:
        return None
    return (Redemption.objects.select_related("reward", "member")
            .filter(code=normalized, status=Redemption.Status.ISSUED, expires_at__gte=now, issued_at__lte=now)
            .first())


def voucher_validate(*, code: str, partner: Partner, store: Store | None = None) -> Redemption:
    """What a till asks before it takes a voucher. Every kind of invalid code gives the same
    answer; too many invalid codes from one partner and store are refused for a while."""
    _check_rate_limit(partner, store)
    redemption = _find_valid(code, timezone.now())
    if redemption is None:
        _record_failure(partner, store)
        raise VoucherInvalid()
    return redemption


@transaction.atomic
def voucher_consume(*, code: str, partner: Partner, store: Store | None = None) -> Redemption:
    """Use a voucher once: compare-and-set from ISSUED to USED."""
    redemption = voucher_validate(code=code, partner=partner, store=store)
    now = timezone.now()
    changed = Redemption.objects.filter(pk=redemption.pk, status=Redemption.Status.ISSUED).update(
        status=Redemption.Status.USED, used_at=now, used_by_partner=partner, used_at_store=store)
    if not changed:  # another till got there first
        _record_failure(partner, store)
        raise VoucherInvalid()
    redemption.refresh_from_db()
    return redemption


# --- Stamp cards ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StampOutcome:
    stamps: int
    vouchers: list[Redemption]


def _stamps_for(program: StampCardProgram, purchase: Purchase, lines) -> int:
    if program.min_amount is not None and purchase.amount < program.min_amount:
        return 0
    qualifying = [line for line in lines
                  if not program.category or line.category.casefold() == program.category.casefold()]
    if not qualifying:
        return 0
    if program.mode == StampCardProgram.Mode.PER_ITEM:
        return sum(line.quantity for line in qualifying)
    return 1


def stamp_cards_apply_purchase(*, purchase: Purchase, lines) -> list[StampOutcome]:
    """Stamp the member's cards for a purchase (inside purchase_record's transaction, member
    locked). A full card issues its reward by itself and a new card takes the extra stamps."""
    outcomes = []
    for program in rule_cache.stamp_programs():
        stamps = _stamps_for(program, purchase, lines)
        if stamps <= 0:
            continue
        _, created = StampCredit.objects.get_or_create(purchase=purchase, program=program,
                                                       defaults={"stamps": stamps})
        if not created:
            continue  # this purchase already stamped
        outcomes.append(StampOutcome(stamps, _add_stamps(purchase.member_id, program, stamps)))
    return outcomes


def _add_stamps(member_id: int, program: StampCardProgram, stamps: int) -> list[Redemption]:
    vouchers = []
    while stamps > 0:
        card, _ = StampCard.objects.get_or_create(member_id=member_id, program=program, completed_at__isnull=True)
        take = min(stamps, program.stamps_needed - card.stamps)
        card.stamps += take
        stamps -= take
        if card.stamps >= program.stamps_needed:
            voucher = redemption_create(member_id=member_id, reward_id=program.reward_id,
                                        source=Redemption.Source.STAMP_CARD, free=True)
            card.completed_at, card.redemption = timezone.now(), voucher
            vouchers.append(voucher)
        card.save()
    return vouchers


# --- Cashback and the member discount ----------------------------------------------------------

def cashback_apply(*, member_id: int) -> list[Redemption]:
    """After earning: while the balance is at or above the threshold, turn points into the
    programme's voucher, and tell the member by e-mail after commit."""
    program = rule_cache.cashback_program()
    if program is None:
        return []
    member = member_lock(member_id)
    issued = []
    while member.points_balance >= max(program.threshold_points, program.reward.points_cost):
        try:
            issued.append(redemption_create(member_id=member_id, reward_id=program.reward_id,
                                            source=Redemption.Source.CASHBACK))
        except (RewardUnavailable, InsufficientPoints):
            break
        member.refresh_from_db(fields=["points_balance"])
    if issued and member.email:
        transaction.on_commit(lambda: _send_cashback_mail(member.pk, [voucher.pk for voucher in issued]))
    return issued


def _send_cashback_mail(member_id: int, redemption_ids: list[int]) -> None:
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils import translation

    member = Member.objects.get(pk=member_id)
    vouchers = list(Redemption.objects.filter(pk__in=redemption_ids).select_related("reward"))
    with translation.override(member.language):
        context = {"member": member, "vouchers": vouchers}
        send_mail(subject=_("Your points became a voucher"),
                  message=render_to_string("emails/cashback.txt", context),
                  from_email=None, recipient_list=[member.email])


def member_discount_percent(member: Member) -> Decimal:
    """The "Treuekarte" discount a till grants: the member's tier discount."""
    return member.tier.discount_percent if member.tier else Decimal("0")


def catalogue_for(member: Member | None) -> list[tuple[Reward, str | None]]:
    """The catalogue, each reward with why the member can't have it (None: they can); what
    they can afford first."""
    rewards = list(Reward.objects.filter(active=True, in_catalogue=True).select_related("min_tier")
                   .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=timezone.now())))
    if member is None:
        return [(reward, None) for reward in rewards]
    counts = {}
    limited = [reward.pk for reward in rewards if reward.limit_per_member is not None]
    if limited:
        for reward_id in (Redemption.objects.filter(member=member, reward_id__in=limited)
                          .exclude(status=Redemption.Status.CANCELLED).values_list("reward_id", flat=True)):
            counts[reward_id] = counts.get(reward_id, 0) + 1
    rows = []
    for reward in rewards:
        reason = reward_unavailable_reason(reward, member, redeemed_by_member=counts.get(reward.pk, 0))
        if reason is None and reward.points_cost > member.points_balance:
            reason = _("you need %(missing)s more points") % {"missing": reward.points_cost - member.points_balance}
        rows.append((reward, reason))
    rows.sort(key=lambda row: (row[1] is not None, row[0].points_cost))
    return rows
