"""Events of surveys and complaints (see core/events.py).

Answers and complaints are the business of one partner at most: `partner_id` is the partner an
answer was given through or a complaint concerns (its API, or its store), whoever acts later;
they are announced to that partner only (members.announcements). `member_id` is None for an
anonymous answer. Free texts (comments, subjects, descriptions) are never part of an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.events import Event


@dataclass(frozen=True, kw_only=True)
class SurveyAnswered(Event):
    name = "survey.answered"
    survey_id: int
    response_id: int
    score: int | None = None

    @property
    def key(self) -> str:
        """Stable identity of what happened: a replay of the same answer has the same key."""
        return f"survey:{self.response_id}"

    def data(self) -> dict[str, Any]:
        return {"survey_id": self.survey_id, "response_id": self.response_id, "score": self.score}


@dataclass(frozen=True, kw_only=True)
class ComplaintClosed(Event):
    name = "complaint.closed"
    complaint_id: int
    status: str
    category: str = ""

    def data(self) -> dict[str, Any]:
        return {"complaint_id": self.complaint_id, "status": self.status, "category": self.category}
