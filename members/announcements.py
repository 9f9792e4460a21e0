"""Webhook announcements: every domain event a partner may subscribe to becomes deliveries.

One subscriber of `core.events.Event` (all events), so whatever path made a change (the partner
API, the portal, the console, an import, a beat job) announces it the same way, in the change's
transaction: the deliveries commit with the change or not at all, and the outbox sends them after
the commit. Only events whose `name` is a `WebhookEvent` (what partners can subscribe to) are
announced, and nothing at all is read or written while no partner subscribes to any of them.

Who hears of an event (its audience), because members are shared by every partner of the
programme but a partner's business is its own:

- usually: the partner whose API call caused it (`event.partner_id`), else every partner related
  to the member (`PartnerRelation`: the member enrolled or bought there). A partner unrelated to
  the member never hears of them: a portal sign-up, which relates the member to nobody yet, is
  announced to nobody.
- `member.erased`: every related partner, and the caller too. Whoever holds a copy of the
  member's data must delete it (Art. 17(2) and 19 DSGVO: the erasure is passed on to everyone the
  data was disclosed to), not only the partner that asked. The payload is the member's API id
  (`member_id`, unchanged by the erasure: the key the partner stored) and `merged_member_ids`, the
  API ids of duplicates merged into the member earlier (the same person, erased with them).
- `survey.answered`, `complaint.closed`: only the partner the answer or complaint belongs to
  (`event.partner_id`: the partner whose API or store it came through), never the member's other
  partners: a complaint about partner A's store is A's business, and an answer given to the
  programme (portal, e-mail link) is nobody's. The free texts (comment, subject, description)
  never leave: they are personal and may name people.

Payload: `{"member_id": <the member's API id>, **event.data()}`; an event whose data has a
"member" object gets the API id there as "id" too (member.enrolled: `payload["member"]["id"]`,
the shape partners had before events). A batch costs one query (API ids and relations of all
its members) and one INSERT, however many events it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Q, Value

from core.events import Event, subscribe
from partners.webhooks import webhook_subscribers, webhooks_record

from .models import Member

# Announced to every related partner, whoever caused them.
EVERY_RELATED_PARTNER = frozenset({"member.erased"})
# Announced to their own partner (`partner_id`) only.
OWN_PARTNER_ONLY = frozenset({"survey.answered", "complaint.closed"})


@subscribe(Event)
def announce(batch: Sequence[Event]) -> None:
    subscribers = webhook_subscribers()  # the process's copy: no query
    wanted = [event for event in batch if subscribers.get(event.name)]
    if not wanted:
        return
    partners = set().union(*(subscribers[event.name] for event in wanted))
    members = _members_of(wanted, partners)
    webhooks_record(
        (event.name, _payload(event, members.get(event.member_id)), audience)
        for event in wanted
        if (audience := _audience(event, members.get(event.member_id)) & subscribers[event.name])
    )


@dataclass(frozen=True, slots=True)
class _Member:
    public_id: str
    partner_ids: frozenset[int]  # related partners among those who subscribe to anything in the batch
    merged_public_ids: list[str]  # erasures only


def _members_of(events: list[Event], partners: set[int]) -> dict[int, _Member]:
    """API id, related partners (among those who subscribe to something) and, for erasures, the
    API ids of merged duplicates of every member of the batch: one query."""
    member_ids = {event.member_id for event in events if event.member_id is not None}
    if not member_ids:
        return {}
    aggregates = {"related": ArrayAgg("partner_relations__partner_id", distinct=True, default=Value([]),
                                      filter=Q(partner_relations__partner_id__in=partners))}
    erased = {event.member_id for event in events if event.name in EVERY_RELATED_PARTNER}
    if erased:
        aggregates["merged"] = ArrayAgg("merged_members__public_id", distinct=True, default=Value([]),
                                        filter=Q(pk__in=erased))
    rows = Member.objects.filter(pk__in=member_ids).values("pk", "public_id").annotate(**aggregates)
    return {row["pk"]: _Member(str(row["public_id"]), frozenset(row["related"]),
                               sorted(str(uuid) for uuid in row.get("merged", ()) if uuid is not None))
            for row in rows}


def _audience(event: Event, member: _Member | None) -> set[int]:
    caller = {event.partner_id} if event.partner_id is not None else set()
    if event.name in OWN_PARTNER_ONLY:
        return caller
    related = set(member.partner_ids) if member is not None else set()
    if event.name in EVERY_RELATED_PARTNER:
        return caller | related
    return caller or related


def _payload(event: Event, member: _Member | None) -> dict[str, Any]:
    public_id = member.public_id if member is not None else None
    payload: dict[str, Any] = {"member_id": public_id, **event.data()}
    if isinstance(payload.get("member"), dict):
        payload["member"] = {"id": public_id, **payload["member"]}
    if event.name in EVERY_RELATED_PARTNER:
        payload["merged_member_ids"] = member.merged_public_ids if member is not None else []
    return payload
