"""The event bus: subscribers run in the publisher's transaction, once per batch, by type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import transaction

from core import events


@dataclass(frozen=True, kw_only=True)
class Happened(events.Event):
    name = "test.happened"
    value: int


@dataclass(frozen=True, kw_only=True)
class HappenedToo(Happened):
    name = "test.happened-too"


@pytest.fixture
def handlers(monkeypatch):
    monkeypatch.setattr(events, "_handlers", events.defaultdict(list))
    return events._handlers


def test_a_handler_gets_each_batch_once_with_only_the_types_it_subscribed_to(db, handlers):
    seen: list[list[int]] = []
    events.subscribe(HappenedToo)(lambda batch: seen.append([event.value for event in batch]))
    with transaction.atomic():
        events.publish([Happened(member_id=1, value=1), HappenedToo(member_id=1, value=2),
                        HappenedToo(member_id=2, value=3)])
    assert seen == [[2, 3]]


def test_subscribing_to_a_base_class_receives_its_subclasses(db, handlers):
    seen: list[str] = []
    events.subscribe(events.Event)(lambda batch: seen.extend(event.name for event in batch))
    with transaction.atomic():
        events.publish(HappenedToo(member_id=1, value=1))
    assert seen == ["test.happened-too"]


def test_publishing_outside_a_transaction_is_refused(transactional_db, handlers):
    with pytest.raises(RuntimeError, match="outside a transaction"):
        events.publish(Happened(member_id=1, value=1))


def test_a_failing_subscriber_rolls_the_change_back(db, handlers):
    from tests.factories import MemberFactory

    member = MemberFactory()

    @events.subscribe(Happened)
    def refuse(batch):
        raise ValueError("no")

    with pytest.raises(ValueError), transaction.atomic():
        type(member).objects.filter(pk=member.pk).update(first_name="Changed")
        events.publish(Happened(member_id=member.pk, value=1))
    member.refresh_from_db()
    assert member.first_name != "Changed"


def test_capture_records_what_was_published(db, handlers):
    with events.capture() as published, transaction.atomic():
        events.publish(Happened(member_id=1, value=7))
    assert [event.value for event in published] == [7]


def _two_step_handler(steps: list[str]):
    """A handler with a `prepare`: its database-free part first, the rest when called."""
    def prepare(batch):
        steps.append(f"prepared {[event.value for event in batch]}")
        return lambda: steps.append(f"done {[event.value for event in batch]}")

    def handler(batch):
        prepare(batch)()

    handler.prepare = prepare
    return handler


def test_prepared_does_the_database_free_part_now_and_the_rest_when_called(transactional_db, handlers):
    steps: list[str] = []
    events.subscribe(Happened)(_two_step_handler(steps))
    events.subscribe(Happened)(lambda batch: steps.append("plain handler"))
    publish = events.prepared([Happened(member_id=1, value=1), Happened(member_id=2, value=2)])
    assert steps == ["prepared [1, 2]"]  # outside any transaction: nothing is written yet
    with pytest.raises(RuntimeError, match="outside a transaction"):
        publish()
    assert steps == ["prepared [1, 2]"]
    with events.capture() as captured, transaction.atomic():
        publish()
    assert steps == ["prepared [1, 2]", "done [1, 2]", "plain handler"]
    assert [event.value for event in captured] == [1, 2]


def test_publish_runs_a_two_step_handler_in_one_go(db, handlers):
    steps: list[str] = []
    events.subscribe(Happened)(_two_step_handler(steps))
    with transaction.atomic():
        events.publish(Happened(member_id=1, value=3))
    assert steps == ["prepared [3]", "done [3]"]


def test_equal_stored_texts_hash_alike_and_keep_their_hash():
    from core.stored_texts import stored_text

    first, second = stored_text("campaign-bonus", name="Sommer"), stored_text("campaign-bonus", name="Sommer")
    assert first == second and hash(first) == hash(second) == hash(first)
    assert len({first, second, stored_text("campaign-bonus", name="Winter")}) == 2
