"""The member import writes each chunk in a thread while it looks up and prepares the next one
(transfers.importers.WriteBehind, #24): the same members, numbers, problems and failures as one
chunk after the other, in the caller's transaction, and no thread left behind."""

from __future__ import annotations

import io
import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import translation

from members import importers as member_importers
from members.models import Member, Tag
from rewards import ledger
from rewards import subscribers as rewards_subscribers
from rewards.models import PointEntry
from tests import factories
from tests.import_helpers import confirm_and_run, csv_bytes, dry_run, errors_by_line, full_import
from transfers import importers as importing
from transfers.importers import WriteBehind
from transfers.models import ImportJob
from transfers.reading import open_table

WRITER = "import-write-behind"


def _writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WRITER]


# --- The writer --------------------------------------------------------------------------------

def test_a_job_runs_in_its_thread_on_the_callers_connection_transaction_and_language(db):
    seen = {}

    def job():
        seen["thread"] = threading.current_thread().name
        seen["connection"] = connections["default"]
        seen["in_transaction"] = connection.in_atomic_block
        seen["language"] = translation.get_language()
        Tag.objects.create(name="written-behind")

    with pytest.raises(RuntimeError, match="roll back"), translation.override("de"), transaction.atomic():
        caller = connections["default"]
        writer = WriteBehind()
        try:
            writer.submit(job)
            writer.wait()
        finally:
            writer.close()
        assert Tag.objects.filter(name="written-behind").exists()
        raise RuntimeError("roll back")
    assert seen == {"thread": WRITER, "connection": caller, "in_transaction": True, "language": "de"}
    assert not Tag.objects.filter(name="written-behind").exists()  # it was the caller's transaction
    assert not caller.allow_thread_sharing
    assert _writer_threads() == []


def test_a_jobs_error_is_raised_in_the_callers_thread_by_the_next_wait(db):
    def job():
        raise ValueError("the database refused")

    writer = WriteBehind()
    writer.submit(job)
    with pytest.raises(ValueError, match="refused"):
        writer.wait()
    writer.close()  # raises nothing: the caller is already failing
    assert not connection.allow_thread_sharing
    assert _writer_threads() == []


# --- The member import -------------------------------------------------------------------------

def _rows(count: int) -> bytes:
    return csv_bytes("Kundennummer;E-Mail;Punkte\n" + "".join(f"K{n};k{n}@example.de;{n}\n"
                                                              for n in range(1, count + 1)))


def test_a_chunk_is_written_in_the_writers_thread_while_the_next_one_is_looked_up(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    steps = []
    looked_up, create = member_importers.MemberImporter._known_members, member_importers.MemberImporter._create

    def recording_lookup(self, candidates):
        steps.append(("look up", [row.line for row in candidates], threading.current_thread().name))
        return looked_up(self, candidates)

    def recording_create(self, writes):
        steps.append(("create", [row.line for row in writes.new], threading.current_thread().name))
        return create(self, writes)

    monkeypatch.setattr(member_importers.MemberImporter, "_known_members", recording_lookup)
    monkeypatch.setattr(member_importers.MemberImporter, "_create", recording_create)
    job = full_import(_rows(6))
    assert job.status == ImportJob.Status.DONE, job.message
    importing_steps = steps[3:]  # the dry run looked up the three chunks first
    assert importing_steps == [
        ("look up", [2, 3], "MainThread"), ("look up", [4, 5], "MainThread"), ("create", [2, 3], WRITER),
        ("look up", [6, 7], "MainThread"), ("create", [4, 5], WRITER), ("create", [6, 7], WRITER)]
    assert Member.objects.count() == 6
    assert sum(PointEntry.objects.values_list("points", flat=True)) == sum(range(1, 7))


def test_a_member_repeated_in_the_next_chunk_is_recognised_before_the_first_is_written(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    # Lines 4 and 5 are looked up while lines 2 and 3 are still waiting to be written.
    content = csv_bytes("Kundennummer;E-Mail\nK1;k1@example.de\nK2;k2@example.de\n"
                        "K1;k1@example.de\nK9;K2@example.de\n")
    job = full_import(content)
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.counts["new"] == 2 and job.counts["skipped"] == 2
    assert sorted(Member.objects.values_list("customer_number", flat=True)) == ["K1", "K2"]


def test_a_number_generated_for_the_chunk_still_being_written_is_refused_in_the_next(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    monkeypatch.setattr(member_importers, "_random_customer_numbers", lambda count: ["K000000042"] * count)
    content = csv_bytes("Kundennummer;E-Mail\n;neu@example.de\nK2;k2@example.de\nK000000042;x@example.de\n")
    job = full_import(content, skip_invalid=True)
    assert job.status == ImportJob.Status.DONE, job.message
    assert errors_by_line(job)[4] == [("Kundennummer", "this import gave K000000042 to another new member")]
    assert Member.objects.get(customer_number="K000000042").email == "neu@example.de"


def test_card_numbers_of_the_chunk_still_being_written_are_not_given_again(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    # The second chunk first draws a card the first chunk took (not in the database yet).
    draws = [[1, 2], [2, 3], [4]]
    monkeypatch.setattr(member_importers, "_random_below", lambda bound, count: draws.pop(0)[:count])
    job = full_import(_rows(4))
    assert job.status == ImportJob.Status.DONE, job.message
    cards = sorted(Member.objects.values_list("card_number", flat=True))
    assert [card[4:15] for card in cards] == [f"{number:011d}" for number in (1, 2, 3, 4)]


def test_a_failure_in_the_writers_thread_fails_the_job_and_leaves_nothing_written(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    create, failed_in = member_importers.MemberImporter._create, []

    def create_then_fail(self, writes):
        if writes.new[0].line == 4:
            failed_in.append(threading.current_thread().name)
            raise RuntimeError("the disk is full")
        return create(self, writes)

    monkeypatch.setattr(member_importers.MemberImporter, "_create", create_then_fail)
    job = full_import(_rows(6))
    assert failed_in == [WRITER]
    assert job.status == ImportJob.Status.FAILED
    assert "the disk is full" in job.message and "nothing was written" in job.message.lower()
    assert not Member.objects.exists() and not PointEntry.objects.exists()
    assert _writer_threads() == []
    assert not connection.allow_thread_sharing


def test_an_invalid_row_while_a_chunk_is_being_written_waits_for_the_writer_and_writes_nothing(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    job = dry_run(_rows(6))
    factories.enrolled_member(customer_number="K77", email="k5@example.de")  # line 6's e-mail is somebody else's
    job = confirm_and_run(job)
    assert job.status == ImportJob.Status.FAILED and "line 6" in job.message
    assert list(Member.objects.values_list("customer_number", flat=True)) == ["K77"]
    assert not PointEntry.objects.exists()
    assert _writer_threads() == []


def test_opening_balances_are_formatted_in_the_main_thread_and_booked_in_the_writers(tiers, monkeypatch):
    # The writer's thread is the import's critical path: it should only wait for PostgreSQL (#24).
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    plan, book, seen = ledger.opening_balances_plan, ledger.opening_balances_book, []

    def recording_plan(**kwargs):
        seen.append(("plan", len(kwargs["credits"]), threading.current_thread().name))
        return plan(**kwargs)

    def recording_book(planned):
        seen.append(("book", planned.entries.rows, threading.current_thread().name))
        return book(planned)

    monkeypatch.setattr(rewards_subscribers, "opening_balances_plan", recording_plan)
    monkeypatch.setattr(rewards_subscribers, "opening_balances_book", recording_book)
    job = full_import(_rows(4))
    assert job.status == ImportJob.Status.DONE, job.message
    # The second chunk's plan and the first chunk's booking run at the same time: in either order.
    assert sorted(seen) == [("book", 2, WRITER), ("book", 2, WRITER), ("plan", 2, "MainThread"),
                            ("plan", 2, "MainThread")]
    assert dict(PointEntry.objects.values_list("member__customer_number", "points")) == {
        "K1": 1, "K2": 2, "K3": 3, "K4": 4}
    assert all(member.points_balance == int(member.customer_number[1:]) for member in Member.objects.all())


def test_the_first_chunks_are_smaller_so_the_writer_starts_early(monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 8)
    monkeypatch.setattr(importing, "FIRST_CHUNK_ROWS", 2)
    content = _rows(27)
    table = open_table(io.BytesIO(content), name="kunden.csv", size=len(content))
    assert [len(chunk) for chunk in importing._chunks(table)] == [2, 4, 8, 8, 5]


def _refer_to_nobody(tag: Tag) -> None:
    """A tag row for a member that doesn't exist (a broken foreign key)."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO members_member_tags (member_id, tag_id) VALUES (%s, %s)", [-1, tag.pk])


def test_foreign_keys_are_checked_as_each_chunk_is_written_not_all_at_the_commit(tiers, monkeypatch):
    # Django's foreign keys are deferred to the commit, where nothing overlaps their checks; in
    # an import they are checked per statement, in the writer's thread (#24).
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    tag, create, refused = Tag.objects.create(name="VIP"), member_importers.MemberImporter._create, []

    def create_and_refer_to_nobody(self, writes):
        create(self, writes)
        try:
            with transaction.atomic():
                _refer_to_nobody(tag)
        except IntegrityError:
            refused.append(threading.current_thread().name)

    monkeypatch.setattr(member_importers.MemberImporter, "_create", create_and_refer_to_nobody)
    job = full_import(_rows(4))
    assert refused == [WRITER, WRITER]  # at once, in each chunk's writes: not at the commit
    assert job.status == ImportJob.Status.DONE, job.message
    assert Member.objects.count() == 4


def test_after_an_import_foreign_keys_are_deferred_to_the_commit_again(tiers):
    tag = Tag.objects.create(name="VIP")
    content = _rows(3)
    with transaction.atomic():
        table = open_table(io.BytesIO(content), name="kunden.csv", size=len(content))
        report = importing.import_table(table, kind=ImportJob.Kind.MEMBERS, write=True, label="kunden.csv")
        assert report.counts["new"] == 3
        _refer_to_nobody(tag)  # accepted until the commit, as Django declares its foreign keys
        with pytest.raises(IntegrityError):
            connection.check_constraints()
        transaction.set_rollback(True)


def test_a_dry_run_starts_no_writer_and_writes_nothing(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    started = []
    monkeypatch.setattr(importing.WriteBehind, "submit", lambda self, job: started.append(job))
    job = dry_run(_rows(6))
    assert job.status == ImportJob.Status.ANALYSED and job.counts["new"] == 6
    assert started == []
    assert not Member.objects.exists() and not PointEntry.objects.exists()
