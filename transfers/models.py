"""Import jobs and the export log (transfers.services, transfers.exports).

Both models came from members and keep their tables (`db_table`)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def import_upload_path(instance: ImportJob, filename: str) -> str:
    # A random folder per upload: file names of customer lists are not guessable URLs.
    return f"imports/{timezone.now():%Y/%m}/{secrets.token_hex(8)}/{filename}"


class ImportJob(models.Model):
    """One uploaded file: its dry run, the confirmed import and the report staff read afterwards.

    The counts and errors of the latest run (dry run or import) are stored here; `dry_run`
    keeps the dry run's counts once the import has replaced them. The uploaded file is
    deleted when the job is finished or discarded (it holds personal data), the report stays."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("members")
        PURCHASES = "purchases", _("historical purchases")
        REWARDS = "rewards", _("rewards")

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for the dry run")
        ANALYSING = "analysing", _("dry run running")
        ANALYSED = "analysed", _("dry run done: waiting for confirmation")
        IMPORTING = "importing", _("importing")
        DONE = "done", _("imported")
        FAILED = "failed", _("failed: nothing was written")
        DISCARDED = "discarded", _("discarded")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    file = models.FileField(_("file"), upload_to=import_upload_path, max_length=255, blank=True)
    file_name = models.CharField(_("file name"), max_length=255)
    file_size = models.BigIntegerField(_("file size (bytes)"), default=0)
    options = models.JSONField(_("options"), default=dict, blank=True,
                               help_text=_("Format, encoding, delimiter, partner and what to do with invalid rows."))
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    delimiter = models.CharField(_("delimiter"), max_length=5, blank=True)
    language = models.CharField(_("report language"), max_length=8, default="de")
    rows_total = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    rows_processed = models.PositiveIntegerField(_("rows processed"), default=0)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    count_new = models.PositiveIntegerField(_("new"), default=0)
    count_updated = models.PositiveIntegerField(_("updated"), default=0)
    count_unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    count_skipped = models.PositiveIntegerField(_("skipped"), default=0)
    count_invalid = models.PositiveIntegerField(_("invalid"), default=0)
    errors = models.JSONField(_("invalid rows"), default=list, blank=True,
                              help_text=_("Line, column and message of each invalid row (the first 1,000)."))
    warnings = models.JSONField(_("notes"), default=list, blank=True)
    dry_run = models.JSONField(_("dry run"), default=dict, blank=True)
    message = models.TextField(_("message"), blank=True)
    attempts = models.PositiveSmallIntegerField(
        _("attempts"), default=0,
        help_text=_("How often the current step (dry run, or import after confirmation) was started. A step "
                    "that was started twice and never finished is not tried again."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("confirmed by"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        db_table = "members_importjob"  # the table it had in members
        ordering = ["-created_at", "-id"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_kind_display()}, {self.created_at:%Y-%m-%d %H:%M})"

    @property
    def duration(self):
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.ANALYSING, self.Status.IMPORTING)

    @property
    def counts(self) -> dict[str, int]:
        return {"new": self.count_new, "updated": self.count_updated, "unchanged": self.count_unchanged,
                "skipped": self.count_skipped, "invalid": self.count_invalid}


class ExportLog(models.Model):
    """Every export of member or ledger data: who, when, what, how many rows (Art. 5(2) DSGVO)."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("members")
        LEDGER = "ledger", _("ledger")
        PURCHASES = "purchases", _("purchases")
        REDEMPTIONS = "redemptions", _("vouchers")
        REWARDS = "rewards", _("rewards")
        SURVEY_ANSWERS = "answers", _("survey answers")
        DONATION_TOTALS = "donations", _("donation totals")

    kind = models.CharField(_("what"), max_length=12, choices=Kind.choices)
    file_format = models.CharField(_("format"), max_length=5)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    filters = models.TextField(_("selection"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("exported by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        db_table = "members_exportlog"  # the table it had in members
        ordering = ["-created_at", "-id"]
        verbose_name = _("export")
        verbose_name_plural = _("exports")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.file_format}, {self.row_count})"
