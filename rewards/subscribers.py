"""What rewards does when something happens to a member elsewhere (see core/events.py).

Registered in RewardsConfig.ready(); run inside the publisher's transaction.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence

from django.contrib.auth import get_user_model

from core.events import subscribe
from core.stored_texts import stored_text
from members.events import MemberErased, MembersMerged, OpeningBalanceImported
from members.models import Member, MemberMerge

from .ledger import (
    BulkCredit,
    member_lock,
    members_lock,
    opening_balances_book,
    opening_balances_plan,
    points_adjust,
    points_credit_bulk,
    points_transfer,
)
from .models import PointEntry, Purchase
from .tier_memberships import tier_memberships_merge
from .tiers import tiers_merge
from .vouchers import member_rewards_merge, member_vouchers_cancel


@subscribe(MembersMerged)
def rewards_follow_the_merge(events: Sequence[MembersMerged]) -> None:
    """The duplicate's balance moves as a pair of transfer entries, its purchases, vouchers and
    stamp cards follow the person, and the survivor keeps the better tier of the two."""
    for event in events:
        locked = members_lock([event.member_id, event.duplicate_id])  # held already by the merge
        survivor, duplicate = locked[event.member_id], locked[event.duplicate_id]
        label = stored_text("member-merged", duplicate=duplicate.customer_number,
                            survivor=survivor.customer_number)
        points = points_transfer(duplicate=duplicate, survivor=survivor, reason=label)
        purchases_moved = Purchase.objects.filter(member=duplicate).update(member=survivor)
        member_rewards_merge(survivor=survivor, duplicate=duplicate)
        survivor = Member.objects.select_related("tier").get(pk=survivor.pk)
        tiers_merge(survivor=survivor, duplicate=duplicate)
        tier_memberships_merge(survivor=survivor, duplicate=duplicate)
        Member.objects.filter(pk=duplicate.pk).update(tier_granted_until=None)  # a grant moved with the tier
        if event.merge_id is not None:
            MemberMerge.objects.filter(pk=event.merge_id).update(points_moved=points, purchases_moved=purchases_moved)


@subscribe(MemberErased)
def rewards_of_an_erased_member(events: Sequence[MemberErased]) -> None:
    """Open vouchers are cancelled (a till must not accept them any more; their points come
    back) and the points left are forfeited with one adjustment entry, so the balance invariant
    holds and nobody counts them as a liability."""
    for event in events:
        member_vouchers_cancel(member_ids=[event.member_id, *event.merged_member_ids])
        member = member_lock(event.member_id)
        if member.points_balance > 0:
            staff_user = (get_user_model().objects.filter(pk=event.staff_user_id).first()
                          if event.staff_user_id is not None else None)
            points_adjust(member_id=member.pk, points=-member.points_balance, staff_user=staff_user,
                          reason=stored_text("member-erased"))


@subscribe(OpeningBalanceImported)
def opening_balances_booked(events: Sequence[OpeningBalanceImported]) -> None:
    """ADJUST, not BONUS: migrated balances are not points earned in the tier window (the file's
    tier column says where the member stands). New members were inserted with their opening
    balance, so only the entries are left (`points_open_bulk` checks that the sums agree)."""
    _opening_balances_prepared(events)()


def _opening_balances_prepared(events: Sequence[OpeningBalanceImported]) -> Callable[[], None]:
    """`opening_balances_booked` in two steps (core.events.prepared): new members' entries and
    events are formatted now, and the call books them; credits to members that exist run at the
    call."""
    batches: dict[tuple, list[OpeningBalanceImported]] = defaultdict(list)
    for event in events:
        batches[(event.source, event.reason, event.staff_user_id, event.new_member)].append(event)
    steps: list[Callable[[], object]] = []
    for (source, reason, staff_user_id, new_member), batch in batches.items():
        credits = [BulkCredit(member_id=event.member_id, points=event.points, reference=event.reference)
                   for event in batch]
        if new_member:
            steps.append(functools.partial(opening_balances_book, opening_balances_plan(
                credits=credits, source=source, kind=PointEntry.Kind.ADJUST, reason=reason,
                created_by_id=staff_user_id)))
        else:
            steps.append(functools.partial(_credit_existing, credits, source, reason, staff_user_id))
    return functools.partial(_run_all, steps)


opening_balances_booked.prepare = _opening_balances_prepared  # type: ignore[attr-defined]


def _run_all(steps: list[Callable[[], object]]) -> None:
    for step in steps:
        step()


def _credit_existing(credits: list[BulkCredit], source: str, reason, staff_user_id: int | None) -> None:
    staff_user = get_user_model().objects.filter(pk=staff_user_id).first() if staff_user_id else None
    points_credit_bulk(credits=credits, source=source, kind=PointEntry.Kind.ADJUST, reason=reason,
                       created_by=staff_user)
