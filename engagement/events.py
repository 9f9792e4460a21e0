"""Events of challenges and badges (see core/events.py). They are not announced to partners
(no webhook names of their own); the portal and tests read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.events import Event


@dataclass(frozen=True, kw_only=True)
class ChallengeCompleted(Event):
    name = "challenge.completed"
    challenge_id: int
    points: int = 0
    redemption_id: int | None = None
    badge_id: int | None = None

    def data(self) -> dict[str, Any]:
        return {"challenge_id": self.challenge_id, "points": self.points}


@dataclass(frozen=True, kw_only=True)
class BadgeAwarded(Event):
    name = "badge.awarded"
    badge_id: int
    challenge_id: int | None = None

    def data(self) -> dict[str, Any]:
        return {"badge_id": self.badge_id, "challenge_id": self.challenge_id}
