"""What campaigns does when something happens to a member (see core/events.py and
members.privacy); registered in CampaignsConfig.ready()."""

from __future__ import annotations

from members.privacy import PersonalValues, personal_data_scrubber, scrub_rows

from .models import Message


@personal_data_scrubber
def scrub_messages(member_ids: list[int], values: PersonalValues) -> None:
    """Erasure: the address a message went to, and an error text that may quote it."""
    Message.objects.filter(member_id__in=member_ids).exclude(to_address="").update(to_address="")
    scrub_rows(Message.objects.filter(member_id__in=member_ids).exclude(error=""), values, ["error"])
