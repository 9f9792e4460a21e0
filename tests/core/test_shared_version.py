"""Shared version stamps (core.shared_version): inside `stamps_read_once()` all stamps come from
one cache read, the process's own bump counts at once, and another process's change is seen by
the next request."""

from __future__ import annotations

from django.core.cache import cache

from core.shared_version import SharedVersion, stamps_read_once


def test_stamps_are_read_in_one_command_however_often_they_are_checked(redis_commands):
    first, second = SharedVersion("test:first-version"), SharedVersion("test:second-version")
    stamps = (first.current(), second.current())
    redis_commands.clear()
    with stamps_read_once():
        assert (first.current(), second.current(), first.current()) == (*stamps, stamps[0])
    assert redis_commands == ["MGET"]


def test_outside_a_request_every_check_reads_the_cache(redis_commands):
    stamp = SharedVersion("test:first-version")
    stamp.current()
    redis_commands.clear()
    stamp.current()
    stamp.current()
    assert redis_commands == ["GET", "GET"]


def test_a_bump_inside_counts_at_once_and_for_everyone():
    stamp = SharedVersion("test:first-version")
    before = stamp.current()
    with stamps_read_once():
        stamp.bump()
        inside = stamp.current()
    assert inside != before and stamp.current() == inside == cache.get("test:first-version")


def test_another_process_change_is_seen_by_the_next_request():
    stamp = SharedVersion("test:first-version")
    before = stamp.current()
    with stamps_read_once():
        cache.set("test:first-version", "changed-elsewhere", timeout=None)
        assert stamp.current() == before  # the request goes on with the stamps it began with
    with stamps_read_once():
        assert stamp.current() == "changed-elsewhere"


def test_a_stamp_missing_from_the_cache_is_created_once():
    stamp = SharedVersion("test:new-version")
    with stamps_read_once():
        created = stamp.current()
        assert stamp.current() == created
    assert cache.get("test:new-version") == created
