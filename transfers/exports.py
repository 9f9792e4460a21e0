"""Exports as CSV or XLSX: the streaming, the permission check and the log.

- Each app registers its kinds of export in its AppConfig.ready() (`register_export`): the
  django-import-export resource that gives the columns (spreadsheet-safe through
  transfers.resources.SafeExportMixin) and the permissions of which staff need one. Members
  and survey answers (free-text comments) need `members.export_personal_data`; the ledger,
  purchases and vouchers (customer numbers, no names) `members.export_ledger` or the former;
  the rewards catalogue `rewards.view_reward`.
- Every export is logged (`ExportLog`: who, when, what, selection, row count) before a byte
  leaves, so a broken download still shows up in the log.
- The rows are read from the read replica if one is configured (core.db_router; the log entry
  is written to the primary).
- Both formats stream from `queryset.iterator()`: a million members never sit in memory at
  once. CSV is streamed to the browser (UTF-8 with BOM and semicolons, what Excel in German
  opens directly); XLSX is written by openpyxl's write-only mode into a temporary file first
  (a zip needs its end before its start).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

from core.db_router import reading_replica

from .models import ExportLog
from .resources import escape_cell

CHUNK = 2000
XLSX_MAX_ROWS = 1_048_575  # Excel's limit below the heading


@dataclass(frozen=True)
class ExportKind:
    resource: type  # a django-import-export resource (SafeExportMixin first)
    permissions: tuple[str, ...]  # any one of them allows the export


EXPORTS: dict[str, ExportKind] = {}


def register_export(kind: str, *, resource: type, permissions: tuple[str, ...]) -> None:
    """Called by each app's AppConfig.ready() for its kinds (ExportLog.Kind values)."""
    EXPORTS[kind] = ExportKind(resource=resource, permissions=permissions)


def resource_for(kind: str):
    return EXPORTS[kind].resource


def can_export(user: AbstractBaseUser, kind: str) -> bool:
    if not (user.is_active and user.is_staff):
        return False
    return any(user.has_perm(permission) for permission in EXPORTS[kind].permissions)


@transaction.atomic
def export_log_record(*, kind: str, file_format: str, row_count: int, filters: str,
                      staff_user: AbstractBaseUser | None) -> ExportLog:
    return ExportLog.objects.create(kind=kind, file_format=file_format, row_count=row_count, filters=filters[:2000],
                                    created_by=staff_user)


def rows(kind: str, queryset, *, native: bool = False) -> Iterator[list]:
    """The heading, then one list of (escaped) cells per object."""
    resource = resource_for(kind)()
    yield [escape_cell(heading) for heading in resource.get_export_headers()]
    queryset = resource.export_queryset(queryset)
    options = {"force_native_type": True} if native else {}
    for obj in queryset.iterator(chunk_size=CHUNK):
        yield resource.export_resource(obj, **options)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_stream(kind: str, queryset) -> Iterator[str]:
    writer = csv.writer(_Echo(), delimiter=";")
    yield "\ufeff"
    for row in rows(kind, queryset):
        yield writer.writerow(row)


def file_name(kind: str, file_format: str) -> str:
    return f"{kind}-{timezone.localtime():%Y-%m-%d-%H%M}.{file_format}"


def export_response(*, kind: str, file_format: str, queryset, staff_user: AbstractBaseUser, filters: str = ""):
    """The download, after the permission check and the log entry."""
    from django.core.exceptions import PermissionDenied

    if not can_export(staff_user, kind):
        raise PermissionDenied
    if file_format not in ("csv", "xlsx"):
        raise ValueError(file_format)
    with reading_replica() as alias:
        # Pinned: the rows are read while the response streams, after this scope has ended.
        queryset = queryset.using(alias)
        count = queryset.count()
    export_log_record(kind=kind, file_format=file_format, row_count=count, filters=filters, staff_user=staff_user)
    name = file_name(kind, file_format)
    if file_format == "csv":
        response = StreamingHttpResponse(_csv_stream(kind, queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return FileResponse(write_xlsx(kind, queryset), as_attachment=True, filename=name,
                        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def write_xlsx(kind: str, queryset):
    """A temporary file (deleted when closed) holding the workbook."""
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(title=str(ExportLog.Kind(kind).label)[:31])
    for index, row in enumerate(rows(kind, queryset, native=True)):
        if index > XLSX_MAX_ROWS:
            break
        sheet.append(row)
    target = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes (and so deletes) it
    workbook.save(target)
    target.seek(0)
    return target
