"""A real Celery worker is killed (SIGKILL) in the middle of a large member import: nothing of it
is written (the import is one transaction), the sweeper queues the job again, another worker
imports the file, and every row exists exactly once with its opening balance booked once."""

from __future__ import annotations

import signal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import override_settings

from members import imports
from members.models import ImportJob, Member
from rewards.models import PointEntry
from tests import factories
from tests.test_campaigns_worker import _broker_folder, _database_url, _kill, _start_worker, _wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROWS = 60_000  # a few seconds of work even on a fast machine: the kill must land mid-import


def _customer_file() -> bytes:
    lines = ["Kundennummer;Vorname;Nachname;E-Mail;Anfangsbestand"]
    lines += [f"W-{n:06d};Kim;Lange;kim.lange{n}@example.org;{n % 50}" for n in range(ROWS)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def test_killing_a_worker_mid_import_then_resuming_imports_every_row_once(tmp_path, capsys):
    import os

    factories.tier_ladder()
    media = tmp_path / "media"
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                            "OPTIONS": {"location": str(media)}},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    for stale in _broker_folder().glob("*.msg"):  # tasks other tests left in this run's broker folder
        stale.unlink()
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.import_worker_settings", "DATABASE_URL": _database_url(),
           "LOYALTY_TEST_BROKER_DIR": str(_broker_folder().parent), "LOYALTY_TEST_MEDIA_DIR": str(media)}

    with override_settings(STORAGES=storages, LOYALTY_IMPORT_SYNC_MAX_BYTES=0):
        job = imports.import_job_create(kind="members", upload=SimpleUploadedFile("gross.csv", _customer_file()),
                                        options={}, staff_user=None, language="en")
        job = imports.import_job_analyse(job_id=job.pk)
        assert job.status == ImportJob.Status.ANALYSED and job.count_new == ROWS
        job = imports.import_job_start(imports.import_job_confirm(job_id=job.pk, staff_user=None))

        first = _start_worker("importer-1", env, log)
        try:
            _wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_processed >= 2000, timeout=180,
                      what="the import to be under way", log=log)
        finally:
            _kill(first)  # kill -9 in the middle of the transaction
        assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.IMPORTING
        assert not Member.objects.exists() and not PointEntry.objects.exists()  # nothing half-written

        # The killed worker's database session ends when PostgreSQL notices (after its current
        # statement): until then the job still looks busy, as it would to beat's sweeper.
        resumed: list = []
        _wait_for(lambda: resumed.extend(imports.import_jobs_resume_stalled(confirmed_before_seconds=0)) or resumed,
                  timeout=120, what="the killed import's session to end", log=log)
        assert resumed == [job.pk]
        second = _start_worker("importer-2", env, log)
        try:
            _wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE, timeout=300,
                      what="the import to finish", log=log)
        finally:
            _kill(second, signal.SIGTERM)

    assert Member.objects.count() == ROWS
    assert Member.objects.values("customer_number").distinct().count() == ROWS
    opening = sum(n % 50 for n in range(ROWS))
    assert sum(PointEntry.objects.values_list("points", flat=True)) == opening
    call_command("verify_ledger")
    assert "ledger OK" in capsys.readouterr().out
