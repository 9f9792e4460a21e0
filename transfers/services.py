"""Import jobs: the services the admin and the Celery tasks call.

How a file travels (see `ImportJob`):

1. Upload (`import_job_create`). The file is stored (default storage, so a worker on another
   machine can read it).
2. Dry run (`import_job_analyse`): read the whole file, detect format, encoding and delimiter,
   map the German or English headings, validate every row, match it against the database and
   count new / updated / unchanged / skipped / invalid rows. Nothing is written but the report.
3. Staff confirm (`import_job_confirm`), then `import_job_run` imports the file in ONE
   transaction: any failure rolls the whole file back. The same importer runs again in write
   mode, so what the dry run promised and what is written cannot drift apart; rows that became
   invalid since the dry run stop the import unless staff chose to skip invalid rows.

Small files run in the admin request, large ones as Celery tasks with a progress bar. Which
importer reads a kind of file is the registry's business (transfers.importers); the importers
themselves live with their models (members/importers.py, rewards/importers.py).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .errors import ImportFailed, ImportFileError
from .importers import IMPORTERS, import_table
from .mapping import MAX_MAPPED_COLUMNS
from .models import ImportJob
from .problems import problem_files, problems_delete, problems_save
from .reading import Table, _EncodingFailed, max_upload_bytes, open_table
from .report import ProblemLog, Progress, Report

logger = logging.getLogger(__name__)


def sync_limit_bytes() -> int:
    """Files up to this size run in the admin request; larger ones as Celery tasks."""
    return getattr(settings, "LOYALTY_IMPORT_SYNC_MAX_BYTES", 2_000_000)


class _ProgressWriter:
    """Writes a job's progress where the admin can see it.

    During the import the job's own transaction is open for minutes and its writes are invisible
    to everybody else, so progress goes through a second, autocommitting connection."""

    def __init__(self, job_id: int, rows_total: int | None):
        self.job_id = job_id
        self.rows_total = rows_total
        self.side = None

    def __call__(self, rows: int, fraction: float) -> None:
        if self.rows_total:
            fraction = rows / self.rows_total
        percent = max(0, min(99, int(fraction * 100)))
        if not connection.in_atomic_block:
            ImportJob.objects.filter(pk=self.job_id).update(rows_processed=rows, progress=percent)
            return
        if self.side is None:
            own = connections[DEFAULT_DB_ALIAS]
            self.side = own.__class__(dict(own.settings_dict), alias=DEFAULT_DB_ALIAS)
        with self.side.cursor() as cursor:
            cursor.execute("UPDATE members_importjob SET rows_processed = %s, progress = %s WHERE id = %s",
                           [rows, percent, self.job_id])

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def _report_fields(report: Report) -> dict:
    counts = report.counts
    return {"count_new": counts["new"], "count_updated": counts["updated"], "count_unchanged": counts["unchanged"],
            "count_skipped": counts["skipped"], "count_invalid": counts["invalid"], "errors": report.errors,
            "warnings": report.warnings}


@transaction.atomic
def import_job_create(*, kind: str, upload, options: dict, staff_user: AbstractBaseUser | None,
                      language: str | None = None) -> ImportJob:
    """Store an uploaded file as a job waiting for its dry run."""
    if kind not in IMPORTERS:
        raise ImportFileError(detail=_("unknown kind of import"))
    if (upload.size or 0) > max_upload_bytes():
        raise ImportFileError(detail=_("the file is larger than %(size)s MB; split it into smaller files")
                              % {"size": max_upload_bytes() // (1024 * 1024)})
    job = ImportJob(kind=kind, file_name=upload.name[:255], file_size=upload.size or 0, options=options,
                    created_by=staff_user, language=(language or translation.get_language() or "de")[:8])
    job.file.save(upload.name, upload, save=False)
    job.save()
    return job


def _open_job_table(job: ImportJob, binary, *, encoding: str | None = None) -> Table:
    options = job.options or {}
    return open_table(binary, name=job.file_name, size=job.file_size, file_format=options.get("format", "auto"),
                      encoding=encoding or job.encoding or options.get("encoding", "auto"),
                      delimiter=job.delimiter or options.get("delimiter", "auto"))


# A step (the dry run, or the import after confirmation) started this often and never finished
# (its worker was killed: out of memory, a hard time limit, a crash) is not started again: the
# job fails with a message instead of taking down one worker after another.
MAX_ATTEMPTS = 2
_DRY_RUN_STEP = (ImportJob.Status.PENDING, ImportJob.Status.ANALYSING)
_IMPORT_STEP = (ImportJob.Status.IMPORTING,)


def import_job_analyse(*, job_id: int) -> ImportJob:
    """The dry run: read and check the whole file, store the report. Writes nothing else.

    It holds a session advisory lock while it runs, so the sweeper can tell a dry run whose
    worker died (still "analysing", nobody holds the lock) from one that is running, and a task
    queued again finds the lock taken (the dry run is running) or the job analysed (it is done).
    Running a dry run again is harmless: it writes only its report. Each start is counted: a
    dry run started MAX_ATTEMPTS times without finishing fails the job instead."""
    with _session_lock(DRY_RUN_LOCK, job_id) as locked:
        if not locked:
            return ImportJob.objects.get(pk=job_id)  # running in another process
        if not ImportJob.objects.filter(pk=job_id, status__in=_DRY_RUN_STEP, attempts__lt=MAX_ATTEMPTS).update(
                status=ImportJob.Status.ANALYSING, started_at=timezone.now(), finished_at=None, progress=0,
                rows_processed=0, attempts=F("attempts") + 1):
            job = ImportJob.objects.get(pk=job_id)
            if job.status in _DRY_RUN_STEP:
                return _give_up(job)  # started twice and never finished
            return job  # already analysed (a redelivered task) or discarded
        return _analyse(ImportJob.objects.get(pk=job_id))


def _analyse(job: ImportJob) -> ImportJob:
    """Whatever happens while reading the file, the job ends analysed or failed with a message."""
    progress = _ProgressWriter(job.pk, None)
    problems_delete(problem_files(job))  # a dry run again (after a new column mapping)
    try:
        with translation.override(job.language):
            problems = ProblemLog()
            try:
                report, table = _dry_run(job, progress, problems)
                problems_file = problems_save(job, problems)
            finally:
                problems.close()
            # In the try: a report the database refuses must fail the job, not leave it "analysing".
            return _finish(job, status=ImportJob.Status.ANALYSED, report=report, rows_total=report.rows,
                           encoding=table.encoding, delimiter=table.delimiter,
                           dry_run={**report.counts, "rows": report.rows, **report.totals(),
                                    "problems_file": problems_file, "headings": _mappable(table.headers),
                                    "columns": report.columns, "ignored_columns": report.ignored_columns})
    except (ImportFileError, ImportFailed) as error:
        return _fail(job, _DRY_RUN_STEP, str(error))
    except Exception as error:  # a time limit, memory, the database, a bug: anything but a kill
        logger.exception("dry run of import job %s failed", job.pk)
        return _fail(job, _DRY_RUN_STEP, _failure_message(job, error, dry_run=True))
    finally:
        progress.close()


def _mappable(headings: list[str]) -> list[str]:
    """The headings the mapping step shows (none for a file with more columns than it handles)."""
    return [heading[:1000] for heading in headings] if len(headings) <= MAX_MAPPED_COLUMNS else []


def _failure_message(job: ImportJob, error: BaseException, *, dry_run: bool) -> str:
    with translation.override(job.language):
        if isinstance(error, SoftTimeLimitExceeded):
            minutes = {"minutes": max(1, import_soft_time_limit() // 60)}
            if dry_run:
                return _("The dry run took longer than its time limit (%(minutes)s minutes) and was stopped. "
                         "Split the file into smaller ones.") % minutes
            return _("The import took longer than its time limit (%(minutes)s minutes) and was stopped; nothing "
                     "was written. Split the file into smaller ones.") % minutes
        if isinstance(error, MemoryError):
            return _("The file needs more memory than the worker has; nothing was written. Split it into smaller "
                     "files.")
        if dry_run:
            return _("The file could not be read. Check its format or choose the encoding.")
        message = _("The import failed and nothing was written: %(error)s") % {"error": error}
        return message[:2000]


def _give_up(job: ImportJob) -> ImportJob:
    """A step that was started MAX_ATTEMPTS times and never finished: fail the job."""
    dry_run = job.status in _DRY_RUN_STEP
    with translation.override(job.language):
        if dry_run:
            message = _("The dry run was started %(count)s times and never finished: the file may be too large "
                        "or damaged for the worker. It is not tried again; check the file or split it, and upload "
                        "it again.") % {"count": job.attempts}
        else:
            message = _("The import was started %(count)s times and never finished; nothing was written. It is "
                        "not tried again; check the file or split it, and upload it again.") % {"count": job.attempts}
    logger.warning("import job %s: %s started %s times without finishing, marked failed", job.pk,
                   "dry run" if dry_run else "import", job.attempts)
    return _fail(job, _DRY_RUN_STEP if dry_run else _IMPORT_STEP, message)


def import_soft_time_limit() -> int:
    return getattr(settings, "LOYALTY_IMPORT_SOFT_TIME_LIMIT", 3600)


def _dry_run(job: ImportJob, progress: Progress, problems: ProblemLog) -> tuple[Report, Table]:
    chosen = (job.options or {}).get("encoding", "auto")
    with job.file.open("rb") as binary:
        encoding = None
        while True:
            try:
                table = _open_job_table(job, binary, encoding=encoding)
                report = import_table(table, kind=job.kind, write=False, label=job.file_name, options=job.options,
                                      progress=progress, problems=problems)
                return report, table
            except _EncodingFailed as failure:
                if chosen != "auto" or failure.encoding in ("cp1252", "utf-16"):
                    raise ImportFileError(
                        detail=_("line %(line)s is not valid %(encoding)s; choose another encoding")
                        % {"line": failure.line, "encoding": failure.encoding}) from None
                # The sample looked like UTF-8 but a later line is not: Windows-1252 it is.
                encoding = "cp1252"


def import_job_headings(job: ImportJob) -> list[str]:
    """The headings of the job's file (read again: a dry run that failed on them stored none)."""
    if not job.file:
        return list((job.dry_run or {}).get("headings") or [])
    with translation.override(job.language), job.file.open("rb") as binary:
        return _open_job_table(job, binary).headers


_MAPPABLE = (ImportJob.Status.ANALYSED, ImportJob.Status.FAILED)


@transaction.atomic
def import_job_map_columns(*, job_id: int, fields: list[str], staff_user: AbstractBaseUser | None) -> ImportJob:
    """Staff mapped the file's headings to fields (one field or "" per heading): the mapping is
    saved with the job and the dry run starts again with it (`import_job_start_dry_run`).

    Refused, changing nothing, if two headings go to one field or a required field is missing."""
    job = ImportJob.objects.select_for_update().get(pk=job_id)
    if job.status not in _MAPPABLE or not job.file:
        raise ImportFileError(detail=_("the columns of this file can no longer be mapped"))
    try:
        headings = import_job_headings(job)
    except _EncodingFailed:
        raise ImportFileError(detail=_("the file could not be read; choose the encoding and upload it again")) \
            from None
    if problems := IMPORTERS[job.kind].mapping_problems(headings, fields):
        raise ImportFileError(detail="; ".join(problems))
    job.options = {**(job.options or {}), "mapping": list(fields), "mapped_by": getattr(staff_user, "pk", None)}
    job.status = ImportJob.Status.PENDING
    job.attempts = 0  # a new dry run: its starts are counted afresh
    job.message = ""
    job.progress = 0
    job.rows_processed = 0
    job.save(update_fields=["options", "status", "attempts", "message", "progress", "rows_processed"])
    return job


def import_job_permission_problem(job: ImportJob, user: AbstractBaseUser) -> str:
    """Why `user` may not import this job (its kind, or a column of it: opening balances need
    the permission to adjust points), or "". The console asks before it confirms."""
    importer = IMPORTERS[job.kind]
    columns = (job.dry_run or {}).get("columns") or {}
    missing = importer.missing_permission(user, columns.values())
    if not missing:
        return ""
    heading = next((heading for heading, target in columns.items()
                    if importer.column_permissions.get(target) == missing), "")
    if not heading:
        return _("You are not allowed to import this kind of file.")
    return _("The column “%(column)s” needs a permission you don't have (%(permission)s): map it to “ignore this "
             "column”, or ask an administrator to import the file.") % {"column": heading, "permission": missing}


@transaction.atomic
def import_job_confirm(*, job_id: int, staff_user: AbstractBaseUser | None, skip_invalid: bool = False) -> ImportJob:
    """Staff saw the dry run and want the import. Compare-and-set: a double click imports once."""
    job = ImportJob.objects.select_for_update().get(pk=job_id)
    if job.status != ImportJob.Status.ANALYSED:
        raise ImportFileError(detail=_("this file is not waiting for confirmation"))
    if job.count_invalid and not skip_invalid:
        raise ImportFileError(detail=_("the dry run found invalid rows: correct the file, or import only the "
                                       "valid rows"))
    job.status = ImportJob.Status.IMPORTING
    job.confirmed_by = staff_user
    job.confirmed_at = timezone.now()
    job.options = {**(job.options or {}), "skip_invalid": bool(skip_invalid)}
    job.progress = 0
    job.rows_processed = 0
    job.attempts = 0  # the import is a new step: its starts are counted afresh
    job.save(update_fields=["status", "confirmed_by", "confirmed_at", "options", "progress", "rows_processed",
                            "attempts"])
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """The import: the whole file in one transaction. Runs only for a confirmed job.

    The job becomes "done" in the same transaction as the rows: whatever stops the import (a
    bad row, a time limit, the database) leaves nothing written and the job failed with a message."""
    job = ImportJob.objects.get(pk=job_id)
    if job.status != ImportJob.Status.IMPORTING:
        return job
    if job_is_running(job_id, key=IMPORT_LOCK):
        return job  # a redelivered task while the first run is still busy: let it finish
    if not ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.IMPORTING, attempts__lt=MAX_ATTEMPTS).update(
            started_at=timezone.now(), finished_at=None, attempts=F("attempts") + 1):
        job.refresh_from_db()
        return _give_up(job) if job.status == ImportJob.Status.IMPORTING else job
    job.refresh_from_db()
    progress = _ProgressWriter(job.pk, job.rows_total)
    problems = None
    try:
        with translation.override(job.language), job.file.open("rb") as binary, transaction.atomic():
            if not _lock_job(job.pk):
                return job  # another run took the lock since the check above
            problems = ProblemLog()
            report = import_table(_open_job_table(job, binary), kind=job.kind, write=True,
                                  skip_invalid=(job.options or {}).get("skip_invalid", False),
                                  staff_user=job.confirmed_by, label=job.file_name, options=job.options,
                                  progress=progress, problems=problems)
            summary = {**report.totals(), "problems_file": problems_save(job, problems)}
            job = _finish(job, status=ImportJob.Status.DONE, report=report, rows_total=report.rows,
                          dry_run={**(job.dry_run or {}), "import": summary})
    except (ImportFileError, ImportFailed) as error:
        return _fail(job, _IMPORT_STEP, str(error))
    except Exception as error:  # a time limit, memory, the database, a bug: the transaction is rolled back
        logger.exception("import job %s failed", job_id)
        return _fail(job, _IMPORT_STEP, _failure_message(job, error, dry_run=False))
    finally:
        progress.close()
        if problems is not None:
            problems.close()
    try:
        _delete_file(job)
    except Exception:  # the import is done; the retention job removes the file later
        logger.exception("could not delete the file of import job %s", job.pk)
    return job


def import_jobs_resume_stalled(*, confirmed_before_seconds: int = 120) -> list[int]:
    """Beat's sweeper for jobs whose work was lost: a worker killed in the middle (with a broker
    that does not redeliver, its task is gone) or a task the broker lost or never took (see
    core.tasks.enqueue).

    - Waiting for its dry run or "dry run running", and nobody holds the dry-run lock: queue
      the dry run again (it writes only its report).
    - "importing" with nothing written (a killed worker's transaction died with it), and nobody
      holds the import lock: queue the import again. A second run is harmless: the lock lets
      only one import at a time, and importing the same file again changes nothing.
    - Either of them already started MAX_ATTEMPTS times: mark it failed instead (a file that
      kills its worker would otherwise be queued again every few minutes, forever).

    A job whose task still waits in a long queue may get a second task: that one finds the lock
    taken or the job past that step, and does nothing."""
    from core.tasks import enqueue

    from .tasks import analyse_import, run_import

    cutoff = timezone.now() - timedelta(seconds=confirmed_before_seconds)
    resumed = []
    dry_runs = ImportJob.objects.filter(Q(status=ImportJob.Status.PENDING, created_at__lt=cutoff)
                                        | Q(status=ImportJob.Status.ANALYSING, started_at__lt=cutoff))
    stalled = [(job_id, DRY_RUN_LOCK, analyse_import)
               for job_id in dry_runs.order_by("pk").values_list("pk", flat=True)]
    stalled += [(job_id, IMPORT_LOCK, run_import) for job_id in ImportJob.objects.filter(
        status=ImportJob.Status.IMPORTING, confirmed_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)]
    for job_id, lock, task in stalled:
        if job_is_running(job_id, key=lock):
            continue
        job = ImportJob.objects.get(pk=job_id)
        if job.attempts >= MAX_ATTEMPTS:
            _give_up(job)  # it crashed its worker twice: a third worker would fare no better
            continue
        enqueue(task, job_id)
        resumed.append(job_id)
    return resumed


# PostgreSQL advisory lock keys (key, job id): the import holds IMPORT_LOCK for its transaction,
# the dry run DRY_RUN_LOCK for its session. A killed worker's locks go with its connection.
IMPORT_LOCK = 7007
DRY_RUN_LOCK = 7008


def job_is_running(job_id: int, *, key: int = IMPORT_LOCK) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, job_id])
        free = bool(cursor.fetchone()[0])
        if free:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, job_id])
    return not free


def _lock_job(job_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [IMPORT_LOCK, job_id])
        return bool(cursor.fetchone()[0])


@contextmanager
def _session_lock(key: int, job_id: int):
    """Yield whether this connection got the lock; release it at the end."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, job_id])
        locked = bool(cursor.fetchone()[0])
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, job_id])


def _finish(job: ImportJob, *, status: str, report: Report | None = None, message: str = "", **fields) -> ImportJob:
    values = {"status": status, "finished_at": timezone.now(), "message": message, **fields}
    if report is not None:
        values.update(_report_fields(report), rows_processed=report.rows, progress=100)
    ImportJob.objects.filter(pk=job.pk).update(**values)
    job.refresh_from_db()
    return job


def _fail(job: ImportJob, step: tuple[str, ...], message: str) -> ImportJob:
    """The job failed in `step`: compare-and-set, so a late error (a time limit after the import
    committed) cannot turn a finished job into a failed one. The connection may be the reason
    for the failure, so a second try gets a fresh one."""
    values = {"status": ImportJob.Status.FAILED, "finished_at": timezone.now(), "message": message[:5000]}
    try:
        ImportJob.objects.filter(pk=job.pk, status__in=step).update(**values)
    except Exception:
        logger.exception("could not mark import job %s failed; trying a new connection", job.pk)
        if connection.in_atomic_block:
            raise
        connection.close()
        ImportJob.objects.filter(pk=job.pk, status__in=step).update(**values)
    job.refresh_from_db()
    return job


@transaction.atomic
def import_job_discard(*, job_id: int, staff_user: AbstractBaseUser | None = None) -> ImportJob:
    """Staff don't want this file: the job stays as a record, the file (personal data) goes."""
    job = ImportJob.objects.select_for_update().get(pk=job_id)
    if job.status not in (ImportJob.Status.ANALYSED, ImportJob.Status.FAILED, ImportJob.Status.PENDING):
        raise ImportFileError(detail=_("a running or finished import cannot be discarded"))
    job.status = ImportJob.Status.DISCARDED
    job.finished_at = job.finished_at or timezone.now()
    job.save(update_fields=["status", "finished_at"])
    transaction.on_commit(lambda: _delete_file(job))
    return job


def _delete_file(job: ImportJob) -> None:
    if job.file:
        job.file.delete(save=False)
        ImportJob.objects.filter(pk=job.pk).update(file="")


# An Excel file is small in the request only if its XML is too: a 2 MB file may unpack to 2 GB.
XLSX_SYNC_INFLATION = 10


def _runs_in_request(job: ImportJob) -> bool:
    limit = sync_limit_bytes()
    if job.file_size > limit:
        return False
    if not job.file or (job.options or {}).get("format") == "csv":
        return True
    from .xlsx import inflated_size

    with job.file.open("rb") as binary:
        if binary.read(4) != b"PK\x03\x04":
            return True
        return inflated_size(binary) <= XLSX_SYNC_INFLATION * limit


def import_job_start_dry_run(job: ImportJob) -> ImportJob:
    """Small files in the request, large ones on a worker (after the job row is committed)."""
    if _runs_in_request(job):
        return import_job_analyse(job_id=job.pk)
    from core.tasks import enqueue

    from .tasks import analyse_import

    enqueue(analyse_import, job.pk)
    return job


def import_job_start(job: ImportJob) -> ImportJob:
    if _runs_in_request(job):
        return import_job_run(job_id=job.pk)
    from core.tasks import enqueue

    from .tasks import run_import

    enqueue(run_import, job.pk)
    return job
