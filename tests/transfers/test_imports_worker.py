"""A real Celery worker is killed (SIGKILL) in the middle of a large member import: nothing of it
is written (the import is one transaction), the sweeper queues the job again, another worker
imports the file, and every row exists exactly once with its opening balance booked once."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from members.models import Member
from rewards.models import PointEntry
from tests import factories
from tests.celery_workers import wait_for
from transfers import services as imports
from transfers.models import ImportJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROWS = 60_000  # a few seconds of work even on a fast machine: the kill must land mid-import


def _customer_file() -> bytes:
    lines = ["Kundennummer;Vorname;Nachname;E-Mail;Anfangsbestand"]
    lines += [f"W-{n:06d};Kim;Lange;kim.lange{n}@example.org;{n % 50}" for n in range(ROWS)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def test_killing_a_worker_mid_import_then_resuming_imports_every_row_once(tmp_path, capsys, workers):
    factories.tier_ladder()
    media = tmp_path / "media"
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                            "OPTIONS": {"location": str(media)}},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES=storages, LOYALTY_IMPORT_SYNC_MAX_BYTES=0):
        job = imports.import_job_create(kind="members", upload=SimpleUploadedFile("gross.csv", _customer_file()),
                                        options={}, staff_user=None, language="en")
        job = imports.import_job_analyse(job_id=job.pk)
        assert job.status == ImportJob.Status.ANALYSED and job.count_new == ROWS
        job = imports.import_job_start(imports.import_job_confirm(job_id=job.pk, staff_user=None))

        workers.start("tests.import_worker_settings", LOYALTY_TEST_MEDIA_DIR=str(media))
        workers.wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_processed >= 2000,
                         what="the import to be under way")
        workers.kill()  # kill -9 of the whole worker in the middle of the transaction
        assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.IMPORTING
        assert not Member.objects.exists() and not PointEntry.objects.exists()  # nothing half-written

        # The killed worker's database session ends when PostgreSQL notices (after its current
        # statement): until then the job still looks busy, as it would to beat's sweeper.
        resumed: list = []
        wait_for(lambda: resumed.extend(imports.import_jobs_resume_stalled(confirmed_before_seconds=0)) or resumed,
                 timeout=120, what="the killed import's session to end")
        assert resumed == [job.pk]
        workers.start("tests.import_worker_settings", LOYALTY_TEST_MEDIA_DIR=str(media))
        workers.wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE,
                         what="the import to finish", timeout=300)

    assert Member.objects.count() == ROWS
    assert Member.objects.values("customer_number").distinct().count() == ROWS
    opening = sum(n % 50 for n in range(ROWS))
    assert sum(PointEntry.objects.values_list("points", flat=True)) == opening
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member, rewards_pointentry")  # fresh from COPY: no statistics yet
    call_command("verify_ledger")
    assert "ledger OK" in capsys.readouterr().out
