"""What other apps add to a member's data export (Art. 15/20 DSGVO).

Members imports no other domain app, yet the export must hold everything we keep about the
person: each app registers a section (`export_section("vouchers")`) in its AppConfig.ready(),
and `members.services.member_export_data` asks every registered section, in registration order
(INSTALLED_APPS order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import Member

# A section gets the member and the ids of everyone who is the same person (merged members).
ExportSection = Callable[[Member, list[int]], Any]

_sections: dict[str, ExportSection] = {}


def export_section(name: str) -> Callable[[ExportSection], ExportSection]:
    """Decorator: the function's result is the export's `name` entry."""
    def register(section: ExportSection) -> ExportSection:
        _sections[name] = section
        return section
    return register


def export_sections(member: Member, people: list[int]) -> dict[str, Any]:
    return {name: section(member, people) for name, section in _sections.items()}
