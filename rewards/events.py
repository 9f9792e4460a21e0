"""Events of points, tiers, purchases and vouchers (see core/events.py for how events work).

Every path that changes a balance or a tier publishes one of these, whatever started it: the
partner API, the portal, the console, an import or a beat job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.events import Event


@dataclass(frozen=True, kw_only=True)
class PurchaseRecorded(Event):
    name = "purchase.recorded"
    purchase_id: int
    store_id: int | None
    order_reference: str
    amount: str  # Decimal as text: events hold plain values
    currency: str
    points: int
    # Names of the buyer-lock annotations that were true (rewards.ledger.buyer_annotations, e.g.
    # "referral_pending"): a subscriber learns what it registered for without a query of its own.
    buyer_flags: tuple[str, ...] = ()
    # What the purchase was, for subscribers that count purchases (engagement's challenges): its
    # time (ISO 8601) and the distinct categories and SKUs of its lines.
    occurred_at: str = ""
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable identity of what happened: a replay of the same purchase has the same key."""
        return f"purchase:{self.purchase_id}"

    def data(self) -> dict[str, Any]:
        return {"purchase_id": self.purchase_id, "order_reference": self.order_reference, "amount": self.amount,
                "currency": self.currency, "points": self.points}


@dataclass(frozen=True, kw_only=True)
class PurchaseReturned(Event):
    """A purchase came back, in part or whole (rewards.returns). `returned_amount` is the purchase's
    total returned so far (Decimal as text, in the purchase's currency); `fully_returned` when
    nothing of it is left."""

    name = "purchase.returned"
    purchase_id: int
    return_id: int
    occurred_at: str  # the purchase's time (ISO 8601)
    returned_amount: str
    fully_returned: bool

    @property
    def key(self) -> str:
        return f"purchase:{self.purchase_id}"

    def data(self) -> dict[str, Any]:
        return {"purchase_id": self.purchase_id, "return_id": self.return_id, "returned_amount": self.returned_amount,
                "fully_returned": self.fully_returned}


@dataclass(frozen=True, kw_only=True)
class PointsChanged(Event):
    """Base of the three balance events; `points` is always positive, `balance` is after."""

    kind: str  # PointEntry.Kind
    points: int
    balance: int
    purchase_id: int | None = None
    redemption_id: int | None = None

    def data(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": self.points, "balance": self.balance,
                "purchase_id": self.purchase_id, "redemption_id": self.redemption_id}


@dataclass(frozen=True, kw_only=True)
class PointsEarned(PointsChanged):
    name = "points.earned"


@dataclass(frozen=True, kw_only=True)
class PointsSpent(PointsChanged):
    """Redemptions, reversals of returned purchases, negative staff adjustments."""

    name = "points.spent"


@dataclass(frozen=True, kw_only=True)
class PointsExpired(PointsChanged):
    name = "points.expired"


@dataclass(frozen=True, kw_only=True)
class TierChanged(Event):
    name = "tier.changed"
    from_tier_id: int | None
    to_tier_id: int | None
    to_tier_name: str = ""
    to_tier_rank: int | None = None
    cause: str = ""  # TierHistory.Cause
    purchase_id: int | None = None

    def data(self) -> dict[str, Any]:
        tier = (None if self.to_tier_id is None else
                {"id": self.to_tier_id, "name": self.to_tier_name, "rank": self.to_tier_rank})
        return {"from_tier_id": self.from_tier_id, "tier": tier, "cause": self.cause, "purchase_id": self.purchase_id}


@dataclass(frozen=True, kw_only=True)
class VoucherIssued(Event):
    name = "voucher.issued"
    redemption_id: int
    reward_id: int
    points: int
    source: str  # Redemption.Source
    code: str = ""  # the printed code (Redemption.display_code)

    def data(self) -> dict[str, Any]:
        voucher = {"id": self.redemption_id, "reward_id": self.reward_id, "points": self.points,
                   "source": self.source}
        # The code is the voucher itself (a till takes whoever shows it): only the partner that
        # issued it, and has it in its response anyway, gets it; the member's other partners don't.
        if self.partner_id is not None and self.code:
            voucher["code"] = self.code
        return {"voucher": voucher}


@dataclass(frozen=True, kw_only=True)
class VoucherUsed(Event):
    name = "voucher.used"
    redemption_id: int
    reward_id: int
    store_id: int | None = None
    store_code: str = ""

    def data(self) -> dict[str, Any]:
        return {"voucher": {"id": self.redemption_id, "reward_id": self.reward_id}, "store": self.store_code or None}
