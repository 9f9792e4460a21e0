"""Helpers shared by the import tests: a file in, a dry run, a confirmation, an import."""

from __future__ import annotations

import io
from datetime import date, datetime

from django.core.files.uploadedfile import SimpleUploadedFile

from transfers import services as imports
from transfers.models import ImportJob


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(content: bytes, *, name: str = "kunden.csv", kind: str = "members", options: dict | None = None,
           user=None) -> ImportJob:
    return imports.import_job_create(kind=kind, upload=SimpleUploadedFile(name, content), options=options or {},
                                     staff_user=user, language="en")


def dry_run(content: bytes, **kwargs) -> ImportJob:
    job = upload(content, **kwargs)
    return imports.import_job_analyse(job_id=job.pk)


def confirm_and_run(job: ImportJob, *, user=None, skip_invalid: bool = False) -> ImportJob:
    imports.import_job_confirm(job_id=job.pk, staff_user=user, skip_invalid=skip_invalid)
    return imports.import_job_run(job_id=job.pk)


def full_import(content: bytes, *, skip_invalid: bool = False, user=None, **kwargs) -> ImportJob:
    job = dry_run(content, user=user, **kwargs)
    assert job.status == ImportJob.Status.ANALYSED, job.message
    return confirm_and_run(job, user=user, skip_invalid=skip_invalid)


def errors_by_line(job: ImportJob) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    for error in job.errors:
        found.setdefault(error["line"], []).append((error["column"], error["message"]))
    return found


def german_date(value: date | datetime) -> str:
    return value.strftime("%d.%m.%Y")
