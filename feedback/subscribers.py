"""What feedback does when members are merged or erased (see core/events.py); registered in ready()."""

from __future__ import annotations

from collections.abc import Sequence

from core.events import subscribe
from members.events import MemberErased, MembersMerged
from members.gdpr import export_section
from members.models import Member

from .selectors import feedback_export
from .services import feedback_erase_member, feedback_merge


@subscribe(MembersMerged)
def feedback_follows_the_merge(events: Sequence[MembersMerged]) -> None:
    for event in events:
        feedback_merge(survivor_id=event.member_id, duplicate_id=event.duplicate_id)


@subscribe(MemberErased)
def feedback_of_an_erased_member(events: Sequence[MemberErased]) -> None:
    for event in events:
        feedback_erase_member(member_ids=[event.member_id, *event.merged_member_ids])


@export_section("feedback")
def feedback_of_the_export(member: Member, people: list[int]) -> list[dict]:
    """The member's data export (members.gdpr): answers and complaints of the person."""
    return feedback_export(people)
