"""The downloadable list of every problem of a dry run or an import (transfers.report.ProblemLog).

Stored gzip-compressed in the default storage (a worker on another machine writes it, the
console reads it), its path in the job's `dry_run` ("problems_file" for the dry run, under
"import" for the import). It names people (a message quotes the cell), so it goes the way of
the report in the job row: the retention job deletes it with the report
(`import_problem_files_delete`) and an erasure rewrites it (`import_problem_files_scrub`)."""

from __future__ import annotations

import gzip
import secrets
from collections.abc import Callable, Iterator

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from .models import ImportJob
from .report import ProblemLog


def problems_save(job: ImportJob, log: ProblemLog) -> str:
    """Store the log of a run (nothing if the run found no problem); its path, or ""."""
    if not log.count:
        return ""
    return default_storage.save(f"imports/problems/{secrets.token_hex(8)}/problems-{job.pk}.csv.gz",
                                ContentFile(log.compressed()))


def problems_path(job: ImportJob) -> str:
    """The list of the run the page shows: the import's once it is done, else the dry run's."""
    summary = job.dry_run or {}
    if job.status == ImportJob.Status.DONE:
        summary = summary.get("import") or {}
    return summary.get("problems_file") or ""


def problem_files(job: ImportJob) -> list[str]:
    summary = job.dry_run or {}
    return [path for path in (summary.get("problems_file"), (summary.get("import") or {}).get("problems_file"))
            if path]


def problems_stream(path: str) -> Iterator[bytes]:
    """The CSV, decompressed a block at a time."""
    with default_storage.open(path, "rb") as stored, gzip.GzipFile(fileobj=stored) as text:
        while block := text.read(64 * 1024):
            yield block


def problems_delete(paths: list[str]) -> None:
    for path in paths:
        if path and default_storage.exists(path):
            default_storage.delete(path)


def import_problem_files_delete(job: ImportJob) -> None:
    """The retention job: the list goes with the report."""
    problems_delete(problem_files(job))


def import_problem_files_scrub(scrub: Callable[[str], str]) -> int:
    """An erasure: every stored list rewritten with the member's values replaced. The lists live
    as long as the reports (days), so there are few; each is read and written whole (a list is
    one file's problems, a few MB compressed at most)."""
    rewritten = 0
    for job in ImportJob.objects.exclude(dry_run={}).only("pk", "dry_run", "status").iterator():
        for path in problem_files(job):
            if not default_storage.exists(path):
                continue
            with default_storage.open(path, "rb") as stored:
                text = gzip.decompress(stored.read()).decode("utf-8-sig")
            cleaned = scrub(text)
            if cleaned != text:
                default_storage.delete(path)
                default_storage.save(path, ContentFile(gzip.compress(cleaned.encode("utf-8-sig"))))
                rewritten += 1
    return rewritten
