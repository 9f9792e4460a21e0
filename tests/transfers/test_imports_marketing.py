"""Marketing imports the lists its work needs (customers and their opt-ins) and exports the members a
campaign needs (by consent, tier, country); points and purchases stay with the roles that book them (#23)."""

from __future__ import annotations

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members.models import ConsentRecord, Member
from rewards.models import PointEntry
from tests import factories
from tests.import_helpers import csv_bytes
from transfers.models import ExportLog, ImportJob

OPT_INS = ("Kundennummer;E-Mail;Vorname;Einwilligung E-Mail;Einwilligungsdatum;Einwilligungsquelle\n"
           "K1;anna@example.de;Anna;ja;02.03.2021;Gewinnspiel-Karte\n"
           "K2;ben@example.de;Ben;;;\n")


def _upload(client, text: str, kind: str = "members"):
    return client.post(reverse("admin:transfers_importjob_add"), {
        "kind": kind, "file_format": "auto", "encoding": "auto", "delimiter": "auto",
        "file": SimpleUploadedFile("liste.csv", csv_bytes(text))})


def test_marketing_imports_customers_with_their_opt_ins(client, tiers):
    client.force_login(factories.staff_in("Marketing"))
    page = client.get(reverse("admin:transfers_importjob_add"))
    assert page.status_code == 200
    kinds = [value for value, _label in page.context["form"].fields["kind"].choices]
    assert kinds == ["members", "rewards"]  # not purchases: they earn points

    assert _upload(client, OPT_INS).status_code == 302
    job = ImportJob.objects.get()
    client.post(reverse("admin:transfers_importjob_confirm", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.message
    anna = Member.objects.get(customer_number="K1")
    assert ConsentRecord.objects.filter(member=anna, purpose=ConsentRecord.Purpose.EMAIL, granted=True).exists()


def test_marketing_cannot_book_opening_balances_through_an_import(client, tiers):
    client.force_login(factories.staff_in("Marketing"))
    _upload(client, "Kundennummer;E-Mail;Punkte\nK1;anna@example.de;500\n")
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.ANALYSED
    response = client.post(reverse("admin:transfers_importjob_confirm", args=[job.pk]), follow=True)
    assert "The column “Punkte” needs a permission you don&#x27;t have" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.ANALYSED and not Member.objects.exists()
    assert not PointEntry.objects.exists()


def test_marketing_exports_the_members_who_consented(client, tiers):
    agreed = factories.enrolled_member(email="ja@example.de")
    ConsentRecord.objects.create(member=agreed, purpose=ConsentRecord.Purpose.EMAIL, granted=True,
                                 source=ConsentRecord.Source.IMPORT, confirmed_at=agreed.joined_at)
    factories.enrolled_member(email="nein@example.de")
    client.force_login(factories.staff_in("Marketing"))
    response = client.post(f"{reverse('admin:members_member_changelist')}?email_consent=yes",
                           {"action": "export_csv", "select_across": "1", "_selected_action": [agreed.pk]})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert len(rows) == 2 and "ja@example.de" in rows[1] and "nein@example.de" not in body
    assert ExportLog.objects.get().kind == ExportLog.Kind.MEMBERS
