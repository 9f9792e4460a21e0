"""The console's imports and exports.

- "Imports" (ImportJob): upload a file (format, encoding and delimiter detected or chosen),
  read the dry run's report (new / updated / unchanged / skipped / invalid, each invalid row
  with line, column and message), then confirm or discard. Large files run on a worker while
  the page shows a progress bar. Everything goes through the services in transfers.services.
- Export actions ("Export selected as CSV / XLSX") on members, the ledger, purchases, vouchers
  and rewards: `ExportActionsMixin` adds them for staff with the permission
  (transfers.exports.can_export); every export is logged (ExportLog, read-only here).
- `ImportButtonMixin` puts an "Import a file" button above the member and purchase lists.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from core.admin_utils import ReadOnlyAdminMixin
from core.errors import LoyaltyError

from . import exports, stalls
from . import services as imports
from .importers import IMPORTERS
from .mapping import MAX_MAPPED_COLUMNS, field_choices, mapping_rows
from .models import ExportLog, ImportJob
from .problems import problems_path, problems_stream
from .reading import _EncodingFailed

IMPORT_PERMISSION = "transfers.add_importjob"


# --- Upload form -------------------------------------------------------------------------------

class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What is in the file"), choices=ImportJob.Kind.choices)
    file = forms.FileField(label=gettext_lazy("File"),
                           help_text=gettext_lazy("CSV (comma or semicolon) or Excel (.xlsx), first row: headings."))
    file_format = forms.ChoiceField(label=gettext_lazy("Format"), initial="auto", choices=[
        ("auto", gettext_lazy("detect")), ("csv", "CSV"), ("xlsx", "Excel (.xlsx)")])
    encoding = forms.ChoiceField(label=gettext_lazy("Encoding"), initial="auto", choices=[
        ("auto", gettext_lazy("detect")), ("utf-8", "UTF-8"), ("utf-8-sig", gettext_lazy("UTF-8 with BOM")),
        ("cp1252", gettext_lazy("Windows-1252 (Excel on Windows)")), ("utf-16", "UTF-16")])
    delimiter = forms.ChoiceField(label=gettext_lazy("Delimiter"), initial="auto", choices=[
        ("auto", gettext_lazy("detect")), (";", gettext_lazy("semicolon ;")), (",", gettext_lazy("comma ,")),
        ("\t", gettext_lazy("tab")), ("|", gettext_lazy("vertical bar |"))])

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:  # only the kinds this user may import (Marketing: members)
            self.fields["kind"].choices = [(kind, label) for kind, label in ImportJob.Kind.choices
                                           if kind in IMPORTERS and not IMPORTERS[kind].missing_permission(user)]
        for importer in IMPORTERS.values():  # e.g. the partner of purchases
            self.fields.update(importer.form_fields())

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".tsv", ".xlsx")):
            raise forms.ValidationError(gettext_lazy("Please upload a .csv or .xlsx file."))
        return upload

    def clean(self):
        data = super().clean()
        if importer := IMPORTERS.get(data.get("kind")):
            importer.clean_form(data, self)
        return data

    def options(self) -> dict:
        data = self.cleaned_data
        options = {"format": data["file_format"], "encoding": data["encoding"], "delimiter": data["delimiter"]}
        for importer in IMPORTERS.values():
            options.update(importer.form_options(data))
        return options


# --- Import jobs -------------------------------------------------------------------------------

@admin.register(ImportJob)
class ImportJobAdmin(ModelAdmin):
    list_display = ["created_at", "file_name", "kind", "status", "progress_bar", "count_new", "count_updated",
                    "count_unchanged", "count_skipped", "count_invalid", "created_by", "duration_display"]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    search_fields = ["file_name"]
    show_full_result_count = False
    ordering = ["-created_at", "-id"]

    # Jobs change only through the upload, confirm and discard pages, never the generic form.
    def has_add_permission(self, request):
        return request.user.has_perm(IMPORT_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description=gettext_lazy("progress"))
    def progress_bar(self, job: ImportJob):
        from django.utils.html import format_html

        return format_html(
            '<div class="h-2 w-24 bg-base-200 rounded-full" role="progressbar" aria-valuenow="{}" aria-valuemin="0" '
            'aria-valuemax="100"><div class="h-2 bg-primary-600 rounded-full" style="width: {}%"></div></div>',
            job.progress, job.progress)

    @display(description=gettext_lazy("duration"))
    def duration_display(self, job: ImportJob) -> str:
        duration = job.duration
        return f"{duration.total_seconds():.1f} s" if duration is not None else "–"

    def get_urls(self):
        urls = [
            path("<int:job_id>/confirm/", self.admin_site.admin_view(self.confirm_view),
                 name="transfers_importjob_confirm"),
            path("<int:job_id>/discard/", self.admin_site.admin_view(self.discard_view),
                 name="transfers_importjob_discard"),
            path("<int:job_id>/progress/", self.admin_site.admin_view(self.progress_view),
                 name="transfers_importjob_progress"),
            path("<int:job_id>/columns/", self.admin_site.admin_view(self.columns_view),
                 name="transfers_importjob_columns"),
            path("<int:job_id>/problems.csv", self.admin_site.admin_view(self.problems_view),
                 name="transfers_importjob_problems"),
        ]
        return urls + super().get_urls()

    def _job_url(self, job_id: int) -> str:
        return reverse("admin:transfers_importjob_change", args=[job_id])

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"kind": request.GET.get("kind", ImportJob.Kind.MEMBERS)}
        form = ImportUploadForm(request.POST or None, request.FILES or None, initial=initial, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                job = imports.import_job_create(kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"],
                                                options=form.options(), staff_user=request.user,
                                                language=get_language())
                job = imports.import_job_start_dry_run(job)
            except LoyaltyError as error:
                form.add_error(None, str(error))
            else:
                return HttpResponseRedirect(self._job_url(job.pk))
        context = {**self.admin_site.each_context(request), "title": _("Import a file"), "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/imports/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = get_object_or_404(ImportJob.objects.select_related("created_by", "confirmed_by"), pk=object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return self._job_page(request, job)

    def _job_page(self, request, job: ImportJob, *, fields: list[str] | None = None, mapping_error: str = ""):
        summary = job.dry_run or {}
        if job.status == ImportJob.Status.DONE:
            summary = summary.get("import") or summary
        notes = job.warnings or []
        skipped = [note for note in notes if note.get("kind") == "skipped"]
        warnings = [note for note in notes if note.get("kind") != "skipped"]  # reports of old jobs: no kind
        context = {
            "skipped_rows": skipped, "warning_rows": warnings,
            "skipped_hidden": max(0, summary.get("skipped_total", len(skipped)) - len(skipped)),
            "warnings_hidden": max(0, summary.get("warnings_total", len(warnings)) - len(warnings)),
            "problems_url": reverse("admin:transfers_importjob_problems", args=[job.pk])
            if problems_path(job) else "",
            **self._mapping_context(request, job, fields, mapping_error),
            **self.admin_site.each_context(request), "title": str(job), "job": job, "opts": self.model._meta,
            "original": job, "can_confirm": job.status == ImportJob.Status.ANALYSED
            and request.user.has_perm(IMPORT_PERMISSION),
            "can_discard": job.status in (ImportJob.Status.ANALYSED, ImportJob.Status.FAILED)
            and request.user.has_perm(IMPORT_PERMISSION) and bool(job.file),
            "counts": [(ImportJob._meta.get_field(f"count_{key}").verbose_name, value)
                       for key, value in job.counts.items()],
            "dry_run_counts": [(ImportJob._meta.get_field(f"count_{key}").verbose_name, job.dry_run.get(key, 0))
                               for key in job.counts] if job.status == ImportJob.Status.DONE and job.dry_run else [],
            "errors_hidden": max(0, summary.get("errors_total", 0) - len(job.errors)),
            "progress_url": reverse("admin:transfers_importjob_progress", args=[job.pk]),
            "stalled": stalls.import_job_stall_text(job),
        }
        return TemplateResponse(request, "admin/imports/job.html", context)

    def _mapping_context(self, request, job: ImportJob, fields: list[str] | None, error: str) -> dict:
        """The column-mapping step: offered while the file waits (analysed, or failed on its headings)."""
        if not (job.status in (ImportJob.Status.ANALYSED, ImportJob.Status.FAILED) and job.file
                and request.user.has_perm(IMPORT_PERMISSION)):
            return {}
        try:
            headings = (job.dry_run or {}).get("headings") or imports.import_job_headings(job)
        except (LoyaltyError, _EncodingFailed):
            return {}  # the file can't be read at all: the message says why
        if len(headings) > MAX_MAPPED_COLUMNS:
            return {}
        importer = IMPORTERS[job.kind]
        rows = mapping_rows(importer, headings, fields or (job.options or {}).get("mapping"))
        unknown = any(not row["known"] for row in rows)
        return {"mapping_rows": rows, "mapping_choices": field_choices(importer), "mapping_error": error,
                "mapping_open": bool(error or job.status == ImportJob.Status.FAILED
                                     or (unknown and "mapping" not in (job.options or {}))),
                "mapping_url": reverse("admin:transfers_importjob_columns", args=[job.pk])}

    def columns_view(self, request, job_id):
        """The mapping form: saved with the job, then the dry run runs again with it."""
        if request.method != "POST":
            return HttpResponseRedirect(self._job_url(job_id))
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id)
        fields: list[str] = []
        try:
            # One field per heading of the file (at most MAX_COLUMNS, transfers.reading); the
            # service refuses files with more than MAX_MAPPED_COLUMNS.
            headings = imports.import_job_headings(job) if job.file else []
            fields = [request.POST.get(f"column-{index}", "")[:50] for index in range(len(headings))]
            job = imports.import_job_map_columns(job_id=job.pk, fields=fields, staff_user=request.user)
            job = imports.import_job_start_dry_run(job)
        except (LoyaltyError, _EncodingFailed) as error:
            job.refresh_from_db()
            return self._job_page(request, job, fields=fields, mapping_error=str(error))
        self.message_user(request, _("The columns are mapped; the dry run used the mapping."), messages.SUCCESS)
        return HttpResponseRedirect(self._job_url(job.pk))

    def problems_view(self, request, job_id):
        """Every problem of the run the page shows (invalid and skipped rows, warnings) as CSV."""
        job = get_object_or_404(ImportJob, pk=job_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        stored = problems_path(job)
        if not stored:
            return HttpResponseRedirect(self._job_url(job.pk))
        response = StreamingHttpResponse(problems_stream(stored), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-problems.csv"'
        return response

    def confirm_view(self, request, job_id):
        if request.method != "POST":
            return HttpResponseRedirect(self._job_url(job_id))
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        if problem := imports.import_job_permission_problem(get_object_or_404(ImportJob, pk=job_id), request.user):
            self.message_user(request, problem, messages.ERROR)
            return HttpResponseRedirect(self._job_url(job_id))
        try:
            job = imports.import_job_confirm(job_id=job_id, staff_user=request.user,
                                             skip_invalid=request.POST.get("skip_invalid") == "on")
            job = imports.import_job_start(job)
        except LoyaltyError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            if job.status == ImportJob.Status.DONE:
                self.message_user(request, _("Imported: %(new)s new, %(updated)s updated, %(unchanged)s unchanged.")
                                  % job.counts, messages.SUCCESS)
            elif job.status == ImportJob.Status.FAILED:
                self.message_user(request, job.message, messages.ERROR)
            else:
                self.message_user(request, _("The import is running; this page shows its progress."))
        return HttpResponseRedirect(self._job_url(job_id))

    def discard_view(self, request, job_id):
        if request.method != "POST":
            return HttpResponseRedirect(self._job_url(job_id))
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        try:
            imports.import_job_discard(job_id=job_id, staff_user=request.user)
            self.message_user(request, _("The file was discarded; nothing was imported."))
        except LoyaltyError as error:
            self.message_user(request, str(error), messages.ERROR)
        return HttpResponseRedirect(self._job_url(job_id))

    def progress_view(self, request, job_id):
        job = get_object_or_404(ImportJob, pk=job_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return JsonResponse({"status": job.status, "status_display": job.get_status_display(),
                             "progress": job.progress, "rows_processed": job.rows_processed,
                             "rows_total": job.rows_total, "running": job.is_running})


@admin.register(ExportLog)
class ExportLogAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["created_at", "kind", "file_format", "row_count", "created_by", "filters"]
    list_filter = ["kind", "file_format"]
    list_select_related = ["created_by"]
    show_full_result_count = False


# --- Mixins for the other apps' admins ------------------------------------------------------------

def _export_action(kind: str, file_format: str):
    def export(modeladmin, request, queryset):
        selection = request.POST.get("select_across") == "1"
        filters = request.GET.urlencode()
        description = (_("all matching") if selection else _("%(count)s selected") % {"count": queryset.count()})
        return exports.export_response(kind=kind, file_format=file_format, queryset=queryset,
                                       staff_user=request.user, filters=f"{description}; {filters}".strip("; "))

    export.__name__ = f"export_{file_format}"
    return export


class ExportActionsMixin:
    """Adds "Export selected as CSV / XLSX" for staff allowed to export this kind of data."""

    export_kind = ""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.export_kind and exports.can_export(request.user, self.export_kind):
            for file_format, label in (("csv", _("Export selected as CSV")), ("xlsx", _("Export selected as Excel"))):
                name = f"export_{file_format}"
                actions[name] = (_export_action(self.export_kind, file_format), name, label)
        return actions


class ImportButtonMixin:
    """An "Import a file" button above the list (unfold's list actions)."""

    import_kind = ""
    actions_list = ["open_import_page"]

    @action(description=gettext_lazy("Import a file"), url_path="import-file", permissions=["import_file"])
    def open_import_page(self, request):
        return HttpResponseRedirect(f"{reverse('admin:transfers_importjob_add')}?kind={self.import_kind}")

    def has_import_file_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm(IMPORT_PERMISSION)
