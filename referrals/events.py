"""Events of the referral programme (see core/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.events import Event


@dataclass(frozen=True, kw_only=True)
class ReferralRewarded(Event):
    """`member_id` is the referrer; the new member is `referee_id` (a database key, not announced)."""

    name = "referral.rewarded"
    referral_id: int
    referee_id: int
    points: int = 0  # the referrer's bonus points (0: capped, or a voucher only)

    @property
    def key(self) -> str:
        """Stable identity of what happened: a replay of the same referral has the same key."""
        return f"referral:{self.referral_id}"

    def data(self) -> dict[str, Any]:
        return {"referral_id": self.referral_id, "points": self.points}
