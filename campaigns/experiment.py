"""A/B assignment and uplift statistics: pure functions, no database.

Assignment hashes (campaign id, member id), so it is deterministic (a retry, a restart or a
second worker puts every member in the same arm) and independent of the order members are
processed in. The first slice of the hash space is the control group (holdout); the rest is
split over the variants by weight.

Uplift is the difference of two conversion rates with a normal-approximation (Wald) confidence
interval: diff ± z · sqrt(p₁(1-p₁)/n₁ + p₀(1-p₀)/n₀). Floats are fine here: these are
statistics for people to read, never amounts that are summed or paid out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5 % quantile of the standard normal distribution


def bucket(campaign_id: int, member_id: int) -> float:
    """A number in [0, 1), uniform over members and stable for a (campaign, member) pair."""
    digest = hashlib.sha256(f"{campaign_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(campaign_id: int, member_id: int, *, holdout_percent: int, weights: Sequence[int]) -> int | None:
    """The index of the member's variant in `weights`, or None for the control group."""
    if not weights or sum(weights) <= 0:
        raise ValueError("a campaign needs at least one variant with a positive weight")
    position = bucket(campaign_id, member_id)
    holdout = holdout_percent / 100
    if position < holdout:
        return None
    # Rescale the rest of [holdout, 1) to [0, total weight) and walk the cumulative weights.
    scaled = (position - holdout) / (1 - holdout) * sum(weights)
    cumulative = 0
    for index, weight in enumerate(weights):
        cumulative += weight
        if scaled < cumulative:
            return index
    return len(weights) - 1  # float rounding at the very top of the range


@dataclass(frozen=True)
class Uplift:
    treatment_rate: float
    control_rate: float
    difference: float  # percentage points as a fraction: 0.02 = +2 points
    low: float
    high: float
    relative: float | None  # difference / control rate; None when the control rate is 0

    @property
    def points(self) -> tuple[float, float, float]:
        """Difference, low and high in percentage points (2.0 = two more buyers in 100)."""
        return self.difference * 100, self.low * 100, self.high * 100

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def uplift(*, conversions: int, size: int, control_conversions: int, control_size: int,
           z: float = Z_95) -> Uplift | None:
    """Conversion uplift of a treatment group over the control group with a confidence
    interval (difference of proportions, normal approximation). None if a group is empty."""
    if size <= 0 or control_size <= 0:
        return None
    if not (0 <= conversions <= size and 0 <= control_conversions <= control_size):
        raise ValueError("conversions must be between 0 and the group size")
    p1, p0 = conversions / size, control_conversions / control_size
    difference = p1 - p0
    error = math.sqrt(p1 * (1 - p1) / size + p0 * (1 - p0) / control_size)
    return Uplift(
        treatment_rate=p1, control_rate=p0, difference=difference,
        low=difference - z * error, high=difference + z * error,
        relative=difference / p0 if p0 > 0 else None,
    )
