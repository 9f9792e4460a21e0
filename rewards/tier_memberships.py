"""Paid and invitation memberships of a tier (VIP), beside the points-based ladder.

- A paid tier is sold for a yearly fee: the fee is recorded as a purchase
  (`purchase_record`, channel "membership"), so it shows in the member's purchases, in revenue
  and in the return rules. The fee earns no points: it buys the tier, not goods, and points on
  it would let a member buy points with the tier. Stamp cards and cashback ignore it too.
- A renewal is a new row that starts the day after the running membership of the same tier
  ends: a member who renews early loses nothing.
- An invitation is staff's: a tier, an end date and a reason.
- The member holds the highest of their points tier and every active membership
  (`_settle`). When a membership ends (the daily job, next to the end of grants) or its fee is
  returned within the return window, the member falls back to the tier they hold on points.
  Every change is a TierHistory row and a TierChanged event (causes paid, invitation,
  membership ended), written by rewards.tiers.change_tier.
- The fee's return window is LOYALTY_MEMBERSHIP_RETURN_DAYS (14, the withdrawal period of a
  contract made online), or the purchases' return window if longer: a return within it ends the
  membership; after it a return of the fee is refused (the member had the tier).

Lock order as everywhere: the member row first (rewards.ledger), then the membership rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ReasonRequired, ReferenceConflict
from members.models import Member, Tier, TierHistory
from partners.models import Partner, Store
from rewards.errors import InvalidMembership, InvalidReturn

from . import programme
from .ledger import member_lock_with_tier, require_active
from .models import Channel, Purchase, TierMembership
from .purchases import purchase_record
from .tiers import active_membership_tier, change_tier, higher, tier_on_points


@dataclass(frozen=True)
class MembershipSale:
    membership: TierMembership
    created: bool


def membership_ends(starts: date, months: int) -> date:
    """The last day of a membership of `months` months from `starts` (12 months from 4 Dec:
    up to and including 3 Dec of the next year)."""
    return starts + relativedelta(months=months) - timedelta(days=1)


def _settle(member: Member, today: date, *, cause: str, reason: str = "", staff_user: AbstractBaseUser | None = None,
            partner_id: int | None = None, purchase_id: int | None = None) -> None:
    """Give the member the highest of their points tier and their active memberships. The
    caller holds the member's lock (member_lock_with_tier)."""
    current = member.tier
    points = None
    if current is not None and current.is_membership:
        on_points, points = tier_on_points(member, today)
    else:
        on_points = current  # a points tier held now is the member's points tier (upgrades come at once)
    target = higher(on_points, active_membership_tier(member, today))
    change_tier(member, target, cause=cause, reason=reason, points=points, staff_user=staff_user,
                partner_id=partner_id, purchase_id=purchase_id)


def _renewal_start(member: Member, tier: Tier, today: date) -> date:
    """Today, or the day after the member's running (or already renewed) paid membership of this
    tier ends: a renewal extends from the old end."""
    latest = (TierMembership.objects.filter(member=member, tier=tier, status=TierMembership.Status.ACTIVE,
                                            ends__gte=today).order_by("-ends").first())
    return latest.ends + timedelta(days=1) if latest is not None else today


@transaction.atomic
def tier_membership_sell(
    *, member_id: int, tier: Tier, partner: Partner, order_reference: str, store: Store | None = None,
    occurred_at: datetime | None = None, staff_user: AbstractBaseUser | None = None,
) -> MembershipSale:
    """Sell (or renew) a paid membership: the fee is a purchase of `partner` with `order_reference`.

    The same (partner, order reference) again returns the first membership and sells nothing:
    a till's or shop's retry never sells twice. An order reference of another purchase is a
    conflict."""
    if tier.kind != Tier.Kind.PAID:
        raise InvalidMembership(detail=_("%(tier)s is not a paid tier") % {"tier": tier.name})
    outcome = purchase_record(  # locks the member first (rewards.ledger.buyer_lock)
        member_id=member_id, partner=partner, order_reference=order_reference, amount=tier.fee_amount,
        currency=tier.fee_currency, occurred_at=occurred_at, store=store, channel=Channel.MEMBERSHIP,
    )
    purchase = outcome.purchase
    if not outcome.created:
        existing = TierMembership.objects.filter(fee_purchase=purchase).first()
        if existing is None or existing.tier_id != tier.pk:
            raise ReferenceConflict(reference=order_reference)
        return MembershipSale(existing, created=False)
    member = member_lock_with_tier(member_id)  # held since purchase_record; read again with the tier
    today = timezone.localdate(purchase.occurred_at)
    starts = _renewal_start(member, tier, today)
    membership = TierMembership.objects.create(
        member=member, tier=tier, source=TierMembership.Source.PAID, starts=starts,
        ends=membership_ends(starts, tier.duration_months), fee_purchase=purchase, invited_by=staff_user,
        reason=_("Fee %(reference)s") % {"reference": order_reference})
    _settle(member, timezone.localdate(), cause=TierHistory.Cause.PAID, reason=membership.reason,
            staff_user=staff_user, partner_id=partner.pk, purchase_id=purchase.pk)
    return MembershipSale(membership, created=True)


@transaction.atomic
def tier_membership_invite(*, member_id: int, tier: Tier, ends: date, reason: str,
                           staff_user: AbstractBaseUser | None) -> TierMembership:
    """Staff invite a member into an invitation tier until `ends` (included), with a reason."""
    if not reason.strip():
        raise ReasonRequired()
    if tier.kind != Tier.Kind.INVITATION:
        raise InvalidMembership(detail=_("%(tier)s is not an invitation tier") % {"tier": tier.name})
    today = timezone.localdate()
    if ends <= today:
        raise InvalidMembership(detail=_("the end date must be after today"))
    member = member_lock_with_tier(member_id)
    require_active(member)
    membership = TierMembership.objects.create(
        member=member, tier=tier, source=TierMembership.Source.INVITATION, starts=today, ends=ends,
        invited_by=staff_user, reason=reason.strip())
    _settle(member, today, cause=TierHistory.Cause.INVITATION, reason=membership.reason, staff_user=staff_user)
    return membership


def tier_memberships_end_due(*, today: date | None = None) -> int:
    """Daily: memberships whose last day has passed end; their members fall back to the highest
    of their points tier and any other membership. Returns the number of memberships ended."""
    today = today or timezone.localdate()
    due = TierMembership.objects.filter(status=TierMembership.Status.ACTIVE, ends__lt=today)
    ended = 0
    for member_id in due.order_by("member_id").values_list("member_id", flat=True).distinct():
        with transaction.atomic():
            member = member_lock_with_tier(member_id)
            count = TierMembership.objects.filter(member=member, status=TierMembership.Status.ACTIVE,
                                                  ends__lt=today).update(status=TierMembership.Status.ENDED,
                                                                         ended_at=timezone.now())
            if count:
                _settle(member, today, cause=TierHistory.Cause.MEMBERSHIP_ENDED)
                ended += count
    return ended


def fee_return_days() -> int:
    return max(settings.LOYALTY_MEMBERSHIP_RETURN_DAYS, programme.return_window_days())


def fee_return_window_open(purchase: Purchase, now: datetime | None = None) -> bool:
    return purchase.occurred_at + timedelta(days=fee_return_days()) >= (now or timezone.now())


def tier_membership_fee_returned(*, member: Member, purchase: Purchase, reference: str) -> None:
    """A return of a membership fee (rewards.returns, which holds the member's and the purchase's
    locks): within the return window it ends the membership, as if it had never been sold;
    after it the fee is not returnable (the member had the tier), and nothing is written."""
    membership = TierMembership.objects.select_for_update().filter(fee_purchase=purchase).first()
    if membership is None or membership.status != TierMembership.Status.ACTIVE:
        return
    if not fee_return_window_open(purchase):
        raise InvalidReturn(detail=_("a membership fee can only be returned within the return window"))
    TierMembership.objects.filter(pk=membership.pk).update(status=TierMembership.Status.RETURNED,
                                                          ended_at=timezone.now())
    member = member_lock_with_tier(member.pk)  # held by the caller; read again with the tier
    _settle(member, timezone.localdate(), cause=TierHistory.Cause.MEMBERSHIP_ENDED,
            reason=_("Fee returned (%(reference)s)") % {"reference": reference}, purchase_id=purchase.pk)


def tier_memberships_merge(*, survivor: Member, duplicate: Member) -> None:
    """A merge: the duplicate's memberships follow the person and may lift the survivor's tier.
    The caller holds both locks."""
    if not TierMembership.objects.filter(member=duplicate).update(member=survivor):
        return
    survivor = member_lock_with_tier(survivor.pk)
    _settle(survivor, timezone.localdate(), cause=TierHistory.Cause.MERGE,
            reason=_("Merged %(duplicate)s") % {"duplicate": duplicate.customer_number})
