"""The import flow in the console: upload, dry-run report, confirm or discard, permissions."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members.models import Member
from tests import factories
from tests.import_helpers import csv_bytes
from transfers.models import ImportJob

SAMPLE = Path(__file__).parents[1] / "data" / "kunden_beispiel.csv"


@pytest.fixture
def admin_client(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def upload(client, content: bytes, name: str = "kunden.csv", **fields):
    data = {"kind": "members", "file_format": "auto", "encoding": "auto", "delimiter": "auto",
            "file": SimpleUploadedFile(name, content), **fields}
    return client.post(reverse("admin:transfers_importjob_add"), data)


def test_the_sample_file_goes_through_dry_run_and_confirmation(admin_client, tiers):
    assert admin_client.get(reverse("admin:transfers_importjob_add")).status_code == 200
    response = upload(admin_client, SAMPLE.read_bytes(), name="kunden_beispiel.csv")
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:transfers_importjob_change",
                                                                           args=[job.pk])
    assert job.status == ImportJob.Status.ANALYSED and job.encoding == "cp1252" and job.delimiter == ";"
    assert job.counts == {"new": 5, "updated": 0, "unchanged": 0, "skipped": 1, "invalid": 5}
    assert not Member.objects.exists()

    page = admin_client.get(response["Location"]).content.decode()
    assert 'data-testid="counts"' in page and 'data-testid="confirm"' in page
    for line, column in ((6, "E-Mail"), (7, "Geburtsdatum"), (8, "Geburtsdatum"), (9, "Land"),
                         (10, "Anfangsbestand/Punkte")):
        assert f'<td class="num">{line}</td><td>{column}</td>' in page
    assert "skip_invalid" in page

    confirm = reverse("admin:transfers_importjob_confirm", args=[job.pk])
    admin_client.post(confirm)  # invalid rows and no choice to skip them: refused
    job.refresh_from_db()
    assert job.status == ImportJob.Status.ANALYSED and not Member.objects.exists()

    admin_client.post(confirm, {"skip_invalid": "on"})
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.progress == 100
    assert Member.objects.count() == 5
    assert Member.objects.get(customer_number="K-200001").points_balance == 1250
    assert job.dry_run["new"] == 5 and job.confirmed_by is not None
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    assert 'data-testid="confirm"' not in page
    changelist = admin_client.get(reverse("admin:transfers_importjob_changelist")).content.decode()
    assert "kunden_beispiel.csv" in changelist and 'role="progressbar"' in changelist


def test_a_clean_file_imports_without_the_skip_choice(admin_client, tiers):
    upload(admin_client, csv_bytes("Customer number,E-mail\nC1,c1@example.com\n"))
    job = ImportJob.objects.get()
    admin_client.post(reverse("admin:transfers_importjob_confirm", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and Member.objects.filter(customer_number="C1").exists()


def test_discarding_keeps_the_record_and_drops_the_file(admin_client, tiers, django_capture_on_commit_callbacks):
    upload(admin_client, csv_bytes("Kundennummer;E-Mail\nK1;k1@example.de\n"))
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):  # the file goes once the discard is committed
        admin_client.post(reverse("admin:transfers_importjob_discard", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DISCARDED and not job.file
    admin_client.post(reverse("admin:transfers_importjob_confirm", args=[job.pk]))
    assert not Member.objects.exists()


def test_upload_form_checks_file_type_and_partner(admin_client, tiers):
    response = upload(admin_client, b"x", name="kunden.pdf")
    assert response.status_code == 200 and "csv" in response.content.decode()
    response = upload(admin_client, csv_bytes("Kundennummer;Bestellnummer\n"), kind="purchases")
    assert response.status_code == 200 and not ImportJob.objects.exists()


def test_progress_endpoint_reports_the_job(admin_client, tiers):
    job = factories.ImportJobFactory(status=ImportJob.Status.IMPORTING, progress=42, rows_processed=420,
                                     rows_total=1000)
    data = admin_client.get(reverse("admin:transfers_importjob_progress", args=[job.pk])).json()
    assert data == {"status": "importing", "status_display": job.get_status_display(), "progress": 42,
                    "rows_processed": 420, "rows_total": 1000, "running": True}
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    assert reverse("admin:transfers_importjob_progress", args=[job.pk]) in page  # the page polls while it runs


def test_large_files_go_to_the_worker(admin_client, tiers, settings, monkeypatch,
                                     django_capture_on_commit_callbacks):
    from transfers.tasks import analyse_import

    settings.LOYALTY_IMPORT_SYNC_MAX_BYTES = 10
    sent = []
    monkeypatch.setattr(analyse_import, "apply_async", lambda args, kwargs: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, csv_bytes("Kundennummer;E-Mail\nK1;k1@example.de\n"))
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.PENDING and sent == [(job.pk,)]
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    assert 'data-status="pending"' in page


def test_staff_without_the_import_permission_cannot_upload_or_confirm(client, tiers):
    viewer = factories.StaffUserFactory()
    viewer.user_permissions.add(Permission.objects.get(codename="view_importjob"))
    client.force_login(viewer)
    assert client.get(reverse("admin:transfers_importjob_add")).status_code == 403
    job = factories.ImportJobFactory(status=ImportJob.Status.ANALYSED)
    assert client.post(reverse("admin:transfers_importjob_confirm", args=[job.pk])).status_code == 403
    assert client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).status_code == 200

    stranger = factories.StaffUserFactory()
    client.force_login(stranger)
    assert client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).status_code == 403


def test_member_list_offers_the_import_button(admin_client, tiers):
    page = admin_client.get(reverse("admin:members_member_changelist")).content.decode()
    assert reverse("admin:members_member_open_import_page") in page
    response = admin_client.get(reverse("admin:members_member_open_import_page"))
    assert response["Location"] == reverse("admin:transfers_importjob_add") + "?kind=members"
