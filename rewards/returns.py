"""Returns: a purchase's points come back at its original rate, line by line.

If the member already spent them, the balance stops at zero and the shortfall is recorded
(DESIGN.md). Lock order: the purchase's member, then the purchase, then its lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.events import publish
from core.stored_texts import stored_text
from members.models import Member
from rewards.errors import InvalidReturn

from .earning import CENT, allocate, reversal_target, to_eur
from .events import PurchaseReturned
from .ledger import post_entry, purchase_and_member_lock
from .models import Channel, PointEntry, Purchase, PurchaseLine, PurchaseReturn
from .tier_memberships import tier_membership_fee_returned


@dataclass(frozen=True)
class ReturnLine:
    line_id: int
    amount: Decimal


@transaction.atomic
def purchase_return(
    *, purchase_id: int, reference: str, amount: Decimal | None = None, lines: Sequence[ReturnLine] | None = None,
) -> PurchaseReturn:
    """Reverse the points earned on what came back, at the purchase's original rate.

    Give an amount (spread over the lines by what is left of them) or lines. If the member
    already spent the points, the balance stops at zero and the shortfall is recorded."""
    member, purchase = purchase_and_member_lock(purchase_id)
    if existing := purchase.returns.filter(reference=reference).first():
        return existing
    if purchase.channel == Channel.MEMBERSHIP:  # a returned fee ends its membership (or is refused)
        tier_membership_fee_returned(member=member, purchase=purchase, reference=reference)
    purchase_lines = list(purchase.lines.select_for_update().order_by("pk"))
    amounts = _return_amounts(purchase_lines, amount, lines)
    total_returned = sum(amounts, Decimal(0))

    reversed_now = 0
    for line, returned in zip(purchase_lines, amounts, strict=True):
        if returned <= 0:
            continue
        line.returned_amount += returned
        target = reversal_target(line.points, line.returned_amount, line.amount)
        reversed_now += target - line.points_reversed
        line.points_reversed = target
    PurchaseLine.objects.bulk_update(purchase_lines, ["returned_amount", "points_reversed"])

    shortfall = _take_back_points(member, purchase, reversed_now, reference)
    Purchase.objects.filter(pk=purchase.pk).update(
        returned_amount=F("returned_amount") + total_returned, points_reversed=F("points_reversed") + reversed_now
    )
    _reduce_purchase_stats(member, purchase, total_returned)
    purchase_return_row = PurchaseReturn.objects.create(
        purchase=purchase, reference=reference, amount=total_returned, points_reversed=reversed_now,
        shortfall_points=shortfall,
    )
    returned_total = purchase.returned_amount + total_returned  # `purchase` was read before this return
    publish(PurchaseReturned(
        member_id=member.pk, purchase_id=purchase.pk, return_id=purchase_return_row.pk,
        occurred_at=purchase.occurred_at.isoformat(), returned_amount=str(returned_total),
        fully_returned=returned_total >= purchase.amount))
    return purchase_return_row


def _return_amounts(purchase_lines: list[PurchaseLine], amount: Decimal | None,
                    lines: Sequence[ReturnLine] | None) -> list[Decimal]:
    remaining = [line.amount - line.returned_amount for line in purchase_lines]
    if lines:
        by_id = {line.pk: index for index, line in enumerate(purchase_lines)}
        amounts = [Decimal(0)] * len(purchase_lines)
        for item in lines:
            if item.line_id not in by_id:
                raise InvalidReturn(detail=_("line %(line)s is not part of this purchase") % {"line": item.line_id})
            amounts[by_id[item.line_id]] += item.amount
    elif amount is not None:
        if amount > sum(remaining, Decimal(0)):
            raise InvalidReturn(detail=_("more than the purchase's unreturned amount"))
        cents = allocate(int(amount / CENT), remaining)
        amounts = [Decimal(cent) * CENT for cent in cents]
    else:
        raise InvalidReturn(detail=_("give an amount or lines"))
    if any(value < 0 for value in amounts) or sum(amounts, Decimal(0)) <= 0:
        raise InvalidReturn(detail=_("the returned amount must be positive"))
    if any(value > left for value, left in zip(amounts, remaining, strict=True)):
        raise InvalidReturn(detail=_("more than the line's unreturned amount"))
    return amounts


def _take_back_points(member: Member, purchase: Purchase, points: int, reference: str) -> int:
    """Returns the shortfall: points that were already spent and could not be taken back."""
    if points <= 0:
        return 0
    if purchase.points_pending > 0:
        # Still held for the return window: nothing was ever available, so nothing is short.
        Purchase.objects.filter(pk=purchase.pk).update(points_pending=F("points_pending") - points)
        Member.objects.filter(pk=member.pk).update(points_pending=F("points_pending") - points)
        member.points_pending -= points
        return 0
    taken = min(points, member.points_balance)
    if taken > 0:
        post_entry(member, kind=PointEntry.Kind.REVERSAL, points=-taken, purchase=purchase,
                   reason=stored_text("return", reference=reference))
    return points - taken


def _reduce_purchase_stats(member: Member, purchase: Purchase, returned: Decimal) -> None:
    # Cumulative, like the points: converting each return on its own and rounding it drifts
    # (three returns of 0.11 CHF take 0.36 EUR off a 0.35 EUR purchase). `purchase` is the
    # row read under lock, so its returned_amount is what came back before this return.
    eur = to_eur(purchase.returned_amount + returned, purchase.currency) - to_eur(
        purchase.returned_amount, purchase.currency)
    recent = purchase.occurred_at >= timezone.now() - timedelta(days=365)
    Member.objects.filter(pk=member.pk).update(
        lifetime_spend=F("lifetime_spend") - eur,
        spend_12m=F("spend_12m") - (eur if recent else 0),
    )
