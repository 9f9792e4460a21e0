"""The import report as staff read it (#23): warnings apart from errors, every skipped row with its
reason (none dropped: the page shows the first ones, the CSV download all), and the column-mapping
step for headings the importer doesn't know."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from members.importers import MemberImporter
from members.models import Member
from tests import factories
from tests.import_helpers import confirm_and_run, csv_bytes, dry_run
from transfers import mapping, report
from transfers import services as imports
from transfers.errors import ImportFileError
from transfers.models import ImportJob


@pytest.fixture
def admin_client(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def _download(client, job: ImportJob) -> list[list[str]]:
    response = client.get(reverse("admin:transfers_importjob_problems", args=[job.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body), delimiter=";"))


# --- Warnings: imported, but worth a look ----------------------------------------------------

POSTAL = ("Kundennummer;E-Mail;PLZ;Land\n"
          "K1;k1@example.de;10115;DE\n"
          "K2;k2@example.de;1234X;DE\n"
          "K3;k3@example.at;12345;AT\n"
          "K4;k4@example.ch;8001;CH\n")


def test_a_postal_code_that_does_not_fit_the_country_is_a_warning_not_a_rejected_customer(tiers):
    job = dry_run(csv_bytes(POSTAL))
    assert job.counts == {"new": 4, "updated": 0, "unchanged": 0, "skipped": 0, "invalid": 0}
    assert job.errors == []
    warnings = {warning["line"]: warning for warning in job.warnings}
    assert set(warnings) == {3, 4}
    assert warnings[3]["kind"] == "warning" and warnings[3]["column"] == "PLZ"
    assert "“1234X” does not look like a postal code of DE (5 digits)" in warnings[3]["message"]
    assert "of AT (4 digits)" in warnings[4]["message"]

    job = confirm_and_run(job)
    assert job.status == ImportJob.Status.DONE, job.message
    assert Member.objects.get(customer_number="K3").postal_code == "12345"
    assert Member.objects.get(customer_number="K2").postal_code == "1234X"
    assert {warning["line"] for warning in job.warnings} == {3, 4}  # the final report has them too


def _upload(text: str, name: str = "kunden.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, csv_bytes(text))


def test_the_report_page_shows_warnings_apart_from_invalid_rows(admin_client, tiers):
    job = dry_run(csv_bytes(POSTAL + "K5;kaputt@;10115;DE\n"))
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    errors = page[page.index('data-testid="errors"'):]
    errors = errors[:errors.index("</table>")]
    warnings = page[page.index('data-testid="warnings"'):]
    warnings = warnings[:warnings.index("</table>")]
    assert '<td class="num">6</td>' in errors and "1234X" not in errors
    assert '<td class="num">3</td><td>PLZ</td>' in warnings and "kaputt@" not in warnings


# --- Skipped rows: each with its reason --------------------------------------------------------

def _repeated_member(times: int) -> str:
    return "Kundennummer;E-Mail\n" + "K1;k1@example.de\n" * times


def test_every_skipped_row_is_listed_with_its_line_and_reason(admin_client, tiers):
    job = dry_run(csv_bytes(_repeated_member(251)))  # 250 repeats: more than the 200 notes kept before
    assert job.counts["skipped"] == 250
    skipped = [note for note in job.warnings if note["kind"] == "skipped"]
    assert [note["line"] for note in skipped] == list(range(3, 253))
    assert all(note["message"] == "the same member as line 2: imported once" for note in skipped)
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    assert 'data-testid="skipped"' in page and '<td class="num">252</td>' in page
    assert 'data-testid="skipped-hidden"' not in page


def test_skipped_rows_beyond_the_page_are_counted_and_all_in_the_download(admin_client, tiers, monkeypatch):
    monkeypatch.setattr(report, "NOTES_KEPT", 10)
    job = dry_run(csv_bytes(_repeated_member(41) + "K2;kaputt@\n"))
    assert len(job.warnings) == 10 and job.dry_run["skipped_total"] == 40 and job.dry_run["errors_total"] == 1
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    assert 'data-testid="skipped-hidden"' in page and "… and 30 more." in page
    assert 'data-testid="problems-download"' in page

    rows = _download(admin_client, job)
    assert rows[0] == ["Line", "Kind", "Column", "Problem"]
    skipped = [row for row in rows[1:] if row[1] == "skipped"]
    assert [int(row[0]) for row in skipped] == list(range(3, 43))
    assert skipped[-1][3] == "the same member as line 2: imported once"
    assert [row for row in rows[1:] if row[1] == "invalid"] == [
        ["43", "invalid", "E-Mail", "“kaputt@” is not a valid e-mail address"]]

    job = confirm_and_run(job, skip_invalid=True)  # the import's own list replaces the dry run's
    assert job.status == ImportJob.Status.DONE and job.dry_run["import"]["skipped_total"] == 40
    assert len([row for row in _download(admin_client, job) if row[1] == "skipped"]) == 40


def test_the_problem_list_escapes_formulas_and_goes_with_the_report(admin_client, tiers, settings):
    job = dry_run(csv_bytes("Kundennummer;E-Mail;=HYPERLINK(1)\nK1;k1@example.de;x\n"))
    rows = _download(admin_client, job)
    assert rows[1] == ["1", "warning", "'=HYPERLINK(1)", "these columns are not imported"]
    stored = job.dry_run["problems_file"]
    assert default_storage.exists(stored)

    from datetime import timedelta

    from members.privacy import retention_run

    ImportJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(days=settings.LOYALTY_RETENTION_IMPORT_DAYS + 1))
    retention_run()
    assert not default_storage.exists(stored)


# --- Column mapping ----------------------------------------------------------------------------

UNKNOWN = ("Kd.-Kennung;Elektropost;Vorname;Kunde seit;PLZ;Umsatz 12 Monate\n"
           "K1;k1@example.de;Anna;01.02.2015;1234;99,50\n"
           "K2;k2@example.de;Ben;03.04.2016;80331;10,00\n")


def test_known_headings_are_suggested_in_german_and_english():
    headings = ["Kunde seit", "Customer since", "PLZ", "Vorname", "First name", "Umsatz 12 Monate", "Kd.-Kennung"]
    assert MemberImporter.suggested_mapping(headings) == ["joined_at", "", "postal_code", "first_name", "", "", ""]


def test_the_mapping_is_saved_with_the_job_and_used_by_dry_run_and_import(tiers):
    job = dry_run(csv_bytes(UNKNOWN))
    assert job.status == ImportJob.Status.FAILED and "customer number / e-mail" in job.message

    fields = ["customer_number", "email", "first_name", "joined_at", "postal_code", ""]
    job = imports.import_job_map_columns(job_id=job.pk, fields=fields, staff_user=None)
    assert job.options["mapping"] == fields and job.status == ImportJob.Status.PENDING
    job = imports.import_job_analyse(job_id=job.pk)
    assert job.status == ImportJob.Status.ANALYSED, job.message
    assert job.counts["new"] == 2 and job.dry_run["ignored_columns"] == ["Umsatz 12 Monate"]
    assert job.dry_run["columns"] == {"Kd.-Kennung": "customer_number", "Elektropost": "email",
                                      "Vorname": "first_name", "Kunde seit": "joined_at", "PLZ": "postal_code"}

    job = confirm_and_run(job)
    assert job.status == ImportJob.Status.DONE, job.message
    anna = Member.objects.get(customer_number="K1")
    assert (anna.email, anna.first_name, anna.postal_code) == ("k1@example.de", "Anna", "01234")
    assert timezone.localtime(anna.joined_at).date().isoformat() == "2015-02-01"


def test_a_mapping_with_two_headings_on_one_field_is_refused_and_changes_nothing(tiers):
    job = dry_run(csv_bytes(UNKNOWN))
    with pytest.raises(ImportFileError) as refused:
        imports.import_job_map_columns(job_id=job.pk, staff_user=None,
                                       fields=["customer_number", "email", "first_name", "joined_at", "", "email"])
    assert "“Elektropost” and “Umsatz 12 Monate” are both mapped to “e-mail”" in str(refused.value)
    job.refresh_from_db()
    assert "mapping" not in job.options and job.status == ImportJob.Status.FAILED


def test_a_mapping_that_leaves_the_required_field_unmapped_is_refused(tiers):
    job = dry_run(csv_bytes(UNKNOWN))
    with pytest.raises(ImportFileError) as refused:
        imports.import_job_map_columns(job_id=job.pk, staff_user=None, fields=["", "", "first_name", "", "", ""])
    assert "a column customer number / e-mail is needed: map one of the headings to it" in str(refused.value)
    with pytest.raises(ImportFileError, match="is not a field of this import"):
        imports.import_job_map_columns(job_id=job.pk, staff_user=None,
                                       fields=["customer_number", "spend_12m", "", "", "", ""])
    with pytest.raises(ImportFileError, match="does not fit the columns"):
        imports.import_job_map_columns(job_id=job.pk, staff_user=None, fields=["customer_number"])


def test_the_mapping_step_is_bounded():
    headings = [f"Spalte {index}" for index in range(mapping.MAX_MAPPED_COLUMNS + 1)]
    problems = mapping.mapping_problems(MemberImporter, headings, [""] * len(headings))
    assert problems and "up to 200 columns" in problems[0]
    rows = mapping.mapping_rows(MemberImporter, ["x" * 5000, "E-Mail"], None)
    assert len(rows[0]["heading"]) == mapping.HEADING_CHARS and rows[1]["field"] == "email"


def test_the_console_maps_the_columns_and_refuses_a_bad_mapping(admin_client, tiers):
    admin_client.post(reverse("admin:transfers_importjob_add"), {
        "kind": "members", "file_format": "auto", "encoding": "auto", "delimiter": "auto",
        "file": _upload(UNKNOWN)})
    job = ImportJob.objects.get()
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    assert 'data-testid="mapping"' in page and "<details open>" in page
    assert '<option value="joined_at" selected>' in page  # "Kunde seit" is known by name

    columns = reverse("admin:transfers_importjob_columns", args=[job.pk])
    response = admin_client.post(columns, {"column-0": "customer_number", "column-1": "customer_number"})
    assert response.status_code == 200 and 'data-testid="mapping-error"' in response.content.decode()
    job.refresh_from_db()
    assert "mapping" not in job.options

    response = admin_client.post(columns, {"column-0": "customer_number", "column-1": "email",
                                           "column-2": "first_name", "column-3": "joined_at",
                                           "column-4": "postal_code", "column-5": ""})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.ANALYSED and job.counts["new"] == 2
    page = admin_client.get(reverse("admin:transfers_importjob_change", args=[job.pk])).content.decode()
    assert "<details open>" not in page  # every column mapped: the step stays folded


def test_an_erasure_rewrites_the_problem_lists_that_name_the_member(admin_client, tiers):
    from members.erasure import member_erase

    member = factories.enrolled_member(email="greta.vergessen@example.de", customer_number="K-77")
    job = dry_run(csv_bytes("Kundennummer;E-Mail\nK-99;greta.vergessen@example.de\nK-78;kaputt@\n"))
    before = "\n".join(";".join(row) for row in _download(admin_client, job))
    assert "the e-mail belongs to customer K-77" in before
    member_erase(member_id=member.pk)
    after = "\n".join(";".join(row) for row in _download(admin_client, job))
    assert "K-77" not in after and "kaputt@" in after
