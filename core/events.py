"""Domain events: what happened, recorded by the service that did it, in its transaction.

A service publishes an event (`publish(PointsEarned(...))`) right after the change it describes,
inside the same database transaction. Subscribers run at once, in that transaction, so whatever
they write (a webhook delivery in the outbox, a referral's qualification, a badge) commits with the
change or not at all. Subscribers must therefore be quick and must not do I/O: anything slow or
external goes to Celery with `transaction.on_commit` (or `core.tasks.enqueue`).

- Event classes live in the app that publishes them (`rewards/events.py` …) and subclass `Event`.
  `name` is the event's public name, the one webhooks use ("points.earned").
- `subscribe(EventClass)` registers a handler; subscribing to a base class (`Event`) receives
  every event. Handlers take a list: set-based paths (expiry, imports) publish thousands of events
  at once and a handler deals with them in one query, not one per event.
- Handlers are registered in `AppConfig.ready()` (by importing the app's `subscribers` module),
  so the publisher does not know who listens: lower layers announce, higher layers react.
- `capture()` records what was published, for tests.
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import transaction

Handler = Callable[[Sequence["Event"]], None]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened to a member (or about one). Fields are plain values (ids,
    numbers, short texts), never model instances: an event must mean the same after the commit."""

    name: ClassVar[str] = "event"
    member_id: int | None
    # The partner whose API call caused the event; None for the portal, console, imports, jobs.
    partner_id: int | None = None

    def data(self) -> dict[str, Any]:
        """What the event tells an outside receiver (webhooks), JSON-ready. Database keys of
        members are never part of it: the announcer adds the member's public id."""
        return {}


_handlers: dict[type[Event], list[Handler]] = defaultdict(list)
_captures: list[list[Event]] = []


def subscribe(*event_types: type[Event]) -> Callable[[Handler], Handler]:
    """Decorator: `@subscribe(PurchaseRecorded)` calls the handler with every published batch of
    that type (or its subclasses)."""
    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            if handler not in _handlers[event_type]:
                _handlers[event_type].append(handler)
        return handler
    return register


def publish(events: Event | Iterable[Event]) -> None:
    """Run the subscribers of `events`, in the caller's transaction. Call it inside the
    transaction of the change (an event published outside one would announce a change that
    may not have happened)."""
    prepared(events)()


def prepared(events: Event | Iterable[Event]) -> Callable[[], None]:
    """`publish` in two steps: what subscribers can work out without the database is done now,
    and calling the result publishes, inside the transaction, as `publish` does. For a caller
    with time now and none later: an import prepares a chunk's events while the previous chunk
    is written (transfers.importers.WriteBehind), so the writing thread only writes.

    A handler takes part by having a `prepare` attribute: a function of the same events that
    does the handler's database-free work and returns a function doing the rest (calling
    `handler(events)` must do what `handler.prepare(events)()` does). Other handlers simply run
    at the call. `prepare` may read neither the database nor anything another handler changes."""
    batch = [events] if isinstance(events, Event) else list(events)
    steps = [handler.prepare(handled) if hasattr(handler, "prepare") else functools.partial(handler, handled)
             for handler, handled in _dispatch_plan(batch)]

    def publish_prepared() -> None:
        if not batch:
            return
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("publish() outside a transaction: publish inside the change's transaction.atomic()")
        for captured in _captures:
            captured.extend(batch)
        for step in steps:
            step()

    return publish_prepared


def _dispatch_plan(batch: list[Event]) -> list[tuple[Handler, list[Event]]]:
    """Each handler once, with the events of the batch it subscribed to, in publishing order."""
    plan: dict[Handler, list[Event]] = {}
    # The handlers of each event class, looked up once per batch: an import publishes a batch of
    # a hundred thousand events of one or two classes.
    handlers_of: dict[type, list[list[Event]]] = {}
    for event in batch:
        event_class = type(event)
        targets = handlers_of.get(event_class)
        if targets is None:
            targets = handlers_of[event_class] = [
                plan.setdefault(handler, []) for event_type in event_class.__mro__
                for handler in _handlers.get(event_type, ())]  # type: ignore[arg-type]
        for target in targets:
            target.append(event)
    return list(plan.items())


@contextlib.contextmanager
def capture() -> Iterator[list[Event]]:
    """`with capture() as events: ...` collects every event published meanwhile (tests)."""
    captured: list[Event] = []
    _captures.append(captured)
    try:
        yield captured
    finally:
        _captures.remove(captured)
