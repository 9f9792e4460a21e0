"""Hostile files must not stop a worker: every file the upload accepts is read within bounded
memory and time, or refused with a clear message on the job; a job whose worker died twice is
failed instead of queued again; time limits end an import cleanly, with nothing written.

The memory bound is measured where it matters: each hostile file is read in a child process
(as a dry run reads it) whose peak RSS comes back from wait4."""

from __future__ import annotations

import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone

from loyalty_site.celery import app
from members.models import Member
from rewards.models import PointEntry
from tests import hostile_files
from tests.import_helpers import csv_bytes, dry_run, upload
from transfers import services as imports
from transfers.models import ImportJob
from transfers.report import REPORT_TEXT_CHARS

MEMORY_BOUND_MIB = 512
SECONDS_BOUND = 30  # a child on a busy 2-core machine: Django's start is most of it


# name -> (generator, a piece of the message the job shows)
HOSTILE = {
    "dimension bomb": (hostile_files.dimension_bomb, None),  # read: three rows, as many as there are
    "shared-string bomb": (hostile_files.shared_string_bomb, "too large once unpacked"),
    "zip bomb": (lambda path: hostile_files.zip_bomb(path, megabytes=600), "too large once unpacked"),
    "too many zip members": (lambda path: hostile_files.many_zip_members(path, members=5_000), "parts"),
    "row two billion": (hostile_files.far_row, "beyond Excel's last row"),
    "five million cells in a row": (hostile_files.wide_xlsx_row, "more than 1000 columns"),
    "billion laughs": (hostile_files.entity_expansion, "DTD"),
    "100 MB CSV line": (hostile_files.huge_csv_line, "longer than 1,048,576 characters"),
    "100 MB CSV cell": (hostile_files.huge_csv_cell, "cannot be read (field larger than field limit"),
    "50,000 CSV columns": (hostile_files.many_csv_columns, "more than 1000 columns"),
    "20 MB XML comment": (hostile_files.giant_comment, "longer than 1 MB"),
}


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def _hostile_file(folder: Path, name: str) -> Path:
    path = folder / (name.replace(" ", "-").replace(",", "") + (".csv" if "CSV" in name else ".xlsx"))
    if not path.exists():
        HOSTILE[name][0](path)
    return path


def _read_in_child(path: Path) -> tuple[dict | None, float, float, str]:
    """(what the child printed, its peak RSS in MiB, seconds, stderr); killed after 2 * SECONDS_BOUND."""
    read = hostile_files.read_in_child(path, settings_module="loyalty_site.settings.test", timeout=2 * SECONDS_BOUND)
    return read.printed, read.peak_rss_mib, read.seconds, read.stderr


@pytest.mark.parametrize("name", list(HOSTILE))
def test_reading_a_hostile_file_stays_under_512_mib_and_ends_in_seconds(name, hostile_folder):
    path = _hostile_file(hostile_folder, name)
    printed, peak_mib, seconds, err = _read_in_child(path)
    assert printed is not None, f"the reader crashed or was killed after {seconds:.1f} s: {err}"
    assert peak_mib < MEMORY_BOUND_MIB, f"peak RSS {peak_mib:.0f} MiB"
    assert seconds < SECONDS_BOUND
    expected = HOSTILE[name][1]
    if expected is None:
        assert printed["refused"] is None and printed["rows"] == 2
    else:
        assert expected in (printed["refused"] or ""), printed


@pytest.mark.django_db
@pytest.mark.parametrize("name", [name for name, (_make, message) in HOSTILE.items()
                                  if message and "zip bomb" not in name])
def test_the_dry_run_of_a_hostile_file_fails_with_a_clear_message(name, hostile_folder, tiers):
    path = _hostile_file(hostile_folder, name)
    job = dry_run(path.read_bytes(), name=path.name)
    assert job.status == ImportJob.Status.FAILED
    assert HOSTILE[name][1] in job.message
    assert job.message.startswith("The file cannot be imported")


@pytest.mark.django_db
def test_a_sheet_that_declares_a_huge_dimension_imports_its_real_rows(hostile_folder, tiers):
    job = dry_run(_hostile_file(hostile_folder, "dimension bomb").read_bytes(), name="dimension.xlsx")
    assert job.status == ImportJob.Status.ANALYSED, job.message
    assert job.count_new == 2


@pytest.mark.django_db
def test_a_zero_byte_in_a_csv_cell_is_a_clear_file_error_not_a_stuck_job(tiers):
    # PostgreSQL refuses a NUL in the stored report: the dry run used to end outside its error
    # handler with the job left "analysing".
    content = csv_bytes("Kundennummer;Vorname;Nachname;E-Mail;Geburtsdatum\n"
                        "K-1;Erika;Mustermann;erika@example.org;31.12.19\x0080\n")
    job = dry_run(content)
    assert job.status == ImportJob.Status.FAILED
    assert "line 2 contains a zero byte" in job.message


@pytest.mark.django_db
def test_more_rows_than_allowed_are_refused(settings, tiers):
    settings.LOYALTY_IMPORT_MAX_ROWS = 5
    lines = ["Kundennummer;Vorname;Nachname;E-Mail"] + [f"K-{n};Kim;Lange;kim{n}@example.org" for n in range(10)]
    job = dry_run(csv_bytes("\n".join(lines) + "\n"))
    assert job.status == ImportJob.Status.FAILED
    assert "more than 5 rows" in job.message


@pytest.mark.django_db
def test_a_file_above_the_upload_limit_is_refused(settings, tiers):
    settings.LOYALTY_IMPORT_MAX_BYTES = 1024 * 1024
    with pytest.raises(imports.ImportFileError, match="larger than 1 MB"):
        upload(b"Kundennummer;Vorname\r\n" + b"K-1;Kim\r\n" * 200_000)
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_a_long_cell_is_quoted_shortened_in_the_report(tiers):
    content = csv_bytes("Kundennummer;Vorname;Nachname;E-Mail;Geburtsdatum\n"
                        f"K-1;Erika;Mustermann;erika@example.org;{'9' * 100_000}\n")
    job = dry_run(content)
    assert job.status == ImportJob.Status.ANALYSED
    assert job.count_invalid == 1
    assert len(job.errors[0]["message"]) <= REPORT_TEXT_CHARS


@pytest.mark.django_db
def test_an_excel_file_that_unpacks_large_is_read_on_the_worker(settings, tiers, hostile_folder,
                                                                  django_capture_on_commit_callbacks):
    settings.LOYALTY_IMPORT_SYNC_MAX_BYTES = 2_000_000
    path = hostile_folder / "wide.xlsx"
    hostile_files.wide_xlsx_row(path, cells=6_000_000)  # 20 KB zipped, 24 MB of XML
    assert path.stat().st_size < 100_000
    job = upload(path.read_bytes(), name="wide.xlsx")
    with django_capture_on_commit_callbacks() as queued:
        job = imports.import_job_start_dry_run(job)
    assert job.status == ImportJob.Status.PENDING and len(queued) == 1


# --- Jobs whose worker died, and jobs that raised anything ------------------------------------

def _customers(rows: int) -> bytes:
    lines = ["Kundennummer;Vorname;Nachname;E-Mail;Anfangsbestand"]
    lines += [f"T-{n:06d};Kim;Lange;kim.lange{n}@example.org;{n % 50}" for n in range(rows)]
    return csv_bytes("\n".join(lines) + "\n")


def _stalled(status: str, attempts: int) -> ImportJob:
    job = upload(_customers(3))
    long_ago = timezone.now() - timedelta(hours=1)
    ImportJob.objects.filter(pk=job.pk).update(status=status, attempts=attempts, started_at=long_ago,
                                               confirmed_at=long_ago)
    return ImportJob.objects.get(pk=job.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ImportJob.Status.ANALYSING, ImportJob.Status.IMPORTING])
def test_the_sweeper_fails_a_job_whose_worker_died_twice_instead_of_queueing_it(
        status, tiers, django_capture_on_commit_callbacks):
    job = _stalled(status, attempts=2)
    with django_capture_on_commit_callbacks() as queued:
        resumed = imports.import_jobs_resume_stalled(confirmed_before_seconds=0)
    assert resumed == [] and queued == []
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "started 2 times and never finished" in job.message


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ImportJob.Status.ANALYSING, ImportJob.Status.IMPORTING])
def test_the_sweeper_still_queues_a_job_whose_worker_died_once(status, tiers, django_capture_on_commit_callbacks):
    job = _stalled(status, attempts=1)
    with django_capture_on_commit_callbacks() as queued:
        resumed = imports.import_jobs_resume_stalled(confirmed_before_seconds=0)
    assert resumed == [job.pk] and len(queued) == 1


@pytest.mark.django_db
def test_a_dry_run_redelivered_after_two_crashes_fails_instead_of_running(tiers):
    job = _stalled(ImportJob.Status.ANALYSING, attempts=2)
    job = imports.import_job_analyse(job_id=job.pk)
    assert job.status == ImportJob.Status.FAILED
    assert "The dry run was started 2 times" in job.message


@pytest.mark.django_db
def test_an_import_redelivered_after_two_crashes_fails_and_writes_nothing(tiers):
    job = _stalled(ImportJob.Status.IMPORTING, attempts=2)
    job = imports.import_job_run(job_id=job.pk)
    assert job.status == ImportJob.Status.FAILED
    assert "The import was started 2 times" in job.message
    assert not Member.objects.exists()


@pytest.mark.django_db
def test_each_start_of_a_step_is_counted_and_confirmation_starts_afresh(tiers):
    job = dry_run(_customers(3))
    assert job.status == ImportJob.Status.ANALYSED and job.attempts == 1
    job = imports.import_job_confirm(job_id=job.pk, staff_user=None)
    assert job.attempts == 0
    job = imports.import_job_run(job_id=job.pk)
    assert job.status == ImportJob.Status.DONE and job.attempts == 1


# Transactional: as on a worker, each statement commits on its own (a failed one inside a test's
# transaction would stop every later one).
@pytest.mark.django_db(transaction=True)
def test_a_report_the_database_refuses_fails_the_job_instead_of_leaving_it_analysing(tiers):
    # Whatever goes wrong when the report is stored (here PostgreSQL refuses it, as it refused a
    # report quoting a 400 MB cell), the job must not stay "analysing".
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION refuse_report() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'report refused'; END $$;
            CREATE TRIGGER refuse_report BEFORE UPDATE ON members_importjob FOR EACH ROW
            WHEN (NEW.status = 'analysed') EXECUTE FUNCTION refuse_report();""")
    try:
        job = dry_run(_customers(3))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_report ON members_importjob; DROP FUNCTION refuse_report();")
    assert job.status == ImportJob.Status.FAILED
    assert job.message == "The file could not be read. Check its format or choose the encoding."


class _SoftTimeLimit:
    """What Celery's soft time limit does in a worker's child process: a signal whose handler
    raises SoftTimeLimitExceeded wherever the task happens to be."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        def expire(signum, frame):
            raise SoftTimeLimitExceeded()

        def swallowed(unraisable):
            # The signal landed where Python cannot raise (a gc or weakref callback, a __del__)
            # and printed "Exception ignored" instead: deliver it again a moment later.
            if isinstance(unraisable.exc_value, SoftTimeLimitExceeded):
                signal.setitimer(signal.ITIMER_REAL, 0.05)
            else:
                self.previous_hook(unraisable)

        self.previous = signal.signal(signal.SIGALRM, expire)
        self.previous_hook, sys.unraisablehook = sys.unraisablehook, swallowed
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        sys.unraisablehook = self.previous_hook


@pytest.mark.django_db(transaction=True)
def test_a_soft_time_limit_ends_the_import_as_failed_with_nothing_written(tiers, settings):
    settings.LOYALTY_IMPORT_SOFT_TIME_LIMIT = 60
    job = dry_run(_customers(20_000))
    assert job.status == ImportJob.Status.ANALYSED
    imports.import_job_confirm(job_id=job.pk, staff_user=None)
    with _SoftTimeLimit(0.5):
        job = imports.import_job_run(job_id=job.pk)
    assert job.status == ImportJob.Status.FAILED
    assert job.message == ("The import took longer than its time limit (1 minutes) and was stopped; nothing was "
                           "written. Split the file into smaller ones.")
    assert not Member.objects.exists() and not PointEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_soft_time_limit_ends_the_dry_run_as_failed(tiers, settings):
    settings.LOYALTY_IMPORT_SOFT_TIME_LIMIT = 120
    job = upload(_customers(40_000))
    with _SoftTimeLimit(0.3):
        job = imports.import_job_analyse(job_id=job.pk)
    assert job.status == ImportJob.Status.FAILED
    assert "took longer than its time limit (2 minutes)" in job.message


def test_every_task_has_a_soft_and_a_hard_time_limit():
    from campaigns.tasks import send_batch
    from transfers.tasks import analyse_import, run_import

    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
    for task in (analyse_import, run_import):  # a million rows take longer than other tasks
        assert app.conf.task_soft_time_limit < task.soft_time_limit < task.time_limit
    # Hard only: a send is never interrupted half-way (equal limits: the pool checks the hard one first).
    assert send_batch.soft_time_limit == send_batch.time_limit < app.conf.task_soft_time_limit
