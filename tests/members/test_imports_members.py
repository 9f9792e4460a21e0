"""Customer lists as people have them: German or English headings, semicolons or commas, UTF-8 (with or
without BOM) or Windows-1252, German dates and decimal commas, XLSX; dry run first, one transaction."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from members import importers as member_importers
from members.models import ConsentRecord, Member, TierHistory
from members.services import consent_given
from rewards.models import PointEntry
from tests import factories
from tests.import_helpers import (
    confirm_and_run,
    csv_bytes,
    dry_run,
    errors_by_line,
    full_import,
    german_date,
    xlsx_bytes,
)
from transfers import importers as importing
from transfers import reading
from transfers import services as imports
from transfers.models import ImportJob

GERMAN = "\n".join([
    "Kundennummer;Anrede;Vorname;Nachname;E-Mail;Telefon;Geburtsdatum;Straße;PLZ;Ort;Land;Sprache;Beitrittsdatum;"
    "Tags;Stufe;Anfangsbestand/Punkte",
    'K-1001;Frau;Jürgen;Weiß;juergen.weiss@example.de;+49 30 1234567;31.12.1980;"Große Straße 5; Hinterhaus";'
    "10115;Berlin;Deutschland;Deutsch;01.03.2019;VIP, Kaffee;Gold;1.250",
    "K-1002;Herr;Özlem;Schäfer;oezlem@example.de;0171 2345678;05.06.1975;Hauptstr. 1;1067;Dresden;DE;de;"
    "15.04.2020;;;0",
    "K-1003;divers;Kim;Bauer;kim@example.at;;1990-02-28;Ringstraße 3;1010;Wien;Österreich;Englisch;;Newsletter;"
    "Silber;300",
]) + "\n"

ENGLISH = (
    "Customer number,Salutation,First name,Last name,E-mail,Birth date,Postal code,City,Country,Language,Tier,"
    "Opening balance\n"
    "C-1,Ms,Anna,Smith,anna@example.com,1985-07-14,8001,Zürich,CH,en,Basic,40\n"
    "C-2,Mr,Bob,Jones,BOB@Example.com,14.07.1970,80331,München,Germany,English,,\n"
)


@pytest.fixture
def staff(db):
    return factories.StaffUserFactory()


def test_dry_run_reads_german_headings_semicolons_and_windows_1252_and_writes_nothing(tiers):
    job = dry_run(csv_bytes(GERMAN, "cp1252"))
    assert job.status == ImportJob.Status.ANALYSED, job.message
    assert job.encoding == "cp1252" and job.delimiter == ";"
    assert job.counts == {"new": 3, "updated": 0, "unchanged": 0, "skipped": 0, "invalid": 0}
    assert job.rows_total == 3
    assert job.dry_run["columns"]["Anfangsbestand/Punkte"] == "opening_balance"
    assert not Member.objects.exists() and not PointEntry.objects.exists()


def test_confirmed_import_creates_members_with_every_field_and_books_opening_balances(tiers, staff):
    job = full_import(csv_bytes(GERMAN, "cp1252"), user=staff)
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.counts["new"] == 3
    weiss = Member.objects.get(customer_number="K-1001")
    assert (weiss.salutation, weiss.first_name, weiss.last_name) == ("ms", "Jürgen", "Weiß")
    assert weiss.birth_date == date(1980, 12, 31)
    assert weiss.street == "Große Straße 5; Hinterhaus"  # the semicolon inside quotes stays in the cell
    assert (weiss.postal_code, weiss.city, weiss.country, weiss.language) == ("10115", "Berlin", "DE", "de")
    assert timezone.localtime(weiss.joined_at).date() == date(2019, 3, 1)
    assert sorted(weiss.tags.values_list("name", flat=True)) == ["Kaffee", "VIP"]
    assert weiss.tier.name_de == "Gold"
    assert weiss.points_balance == 1250  # "1.250" is German for one thousand two hundred fifty
    entry = weiss.point_entries.get()
    assert (entry.source, entry.reference, entry.points, entry.kind) == (
        "import", "import-opening:K-1001", 1250, PointEntry.Kind.ADJUST)
    assert entry.created_by == staff
    history = weiss.tier_history.get()
    assert history.cause == TierHistory.Cause.ENROLMENT and history.to_tier.name_de == "Gold"

    sahin = Member.objects.get(customer_number="K-1002")
    assert sahin.postal_code == "01067"  # the leading zero Excel dropped
    assert sahin.tier.rank == 0 and sahin.points_balance == 0
    assert not sahin.point_entries.exists()  # an opening balance of 0 books nothing
    bauer = Member.objects.get(customer_number="K-1003")
    assert (bauer.salutation, bauer.country, bauer.language, bauer.postal_code) == ("diverse", "AT", "en", "1010")
    assert not job.file  # the file with personal data is gone, the report stays


def test_english_headings_commas_and_utf8_with_bom(tiers):
    job = full_import(csv_bytes(ENGLISH, "utf-8-sig"))
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.encoding == "utf-8-sig" and job.delimiter == ","
    anna = Member.objects.get(customer_number="C-1")  # the BOM is not part of the first heading
    assert (anna.country, anna.city, anna.points_balance, anna.tier.name_en) == ("CH", "Zürich", 40, "Basic")
    bob = Member.objects.get(customer_number="C-2")
    assert bob.birth_date == date(1970, 7, 14) and bob.language == "en"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
def test_each_encoding_is_detected(tiers, encoding):
    job = dry_run(csv_bytes(GERMAN, encoding))
    assert job.status == ImportJob.Status.ANALYSED, job.message
    assert job.counts["new"] == 3 and job.counts["invalid"] == 0


def test_encoding_chosen_in_the_form_wins(tiers):
    job = full_import(csv_bytes(GERMAN, "cp1252"), options={"encoding": "cp1252", "delimiter": ";"})
    assert Member.objects.get(customer_number="K-1001").last_name == "Weiß"
    assert job.encoding == "cp1252"


def test_utf8_sample_with_windows_1252_further_down_falls_back(tiers, monkeypatch):
    monkeypatch.setattr(reading, "SAMPLE_BYTES", 80)  # the sample ends before the first umlaut
    text = "Kundennummer;E-Mail;Nachname\n" + "".join(f"K{n};k{n}@example.de;Meyer\n" for n in range(5))
    text += "K9;k9@example.de;Müller\n"
    job = dry_run(csv_bytes(text, "cp1252"))
    assert job.status == ImportJob.Status.ANALYSED, job.message
    assert job.encoding == "cp1252" and job.counts["new"] == 6


def test_wrong_encoding_chosen_is_a_clear_error(tiers):
    job = dry_run(csv_bytes(GERMAN, "cp1252"), options={"encoding": "utf-8"})
    assert job.status == ImportJob.Status.FAILED
    assert "encoding" in job.message


def test_invalid_rows_are_reported_with_line_column_and_message(tiers):
    tomorrow = german_date(timezone.localdate() + timedelta(days=1))
    text = (
        "Kundennummer;E-Mail;Geburtsdatum;Land;Anfangsbestand;PLZ;Anrede\n"
        "K1;ok@example.de;01.01.1990;DE;10;10115;Frau\n"
        "K2;kaputt@;01.01.1990;DE;;;\n"
        "K3;k3@example.de;31.02.1990;DE;;;\n"
        f"K4;k4@example.de;{tomorrow};DE;;;\n"
        "K5;k5@example.de;;Atlantis;;;\n"
        "K6;k6@example.de;;DE;-5;;\n"
        "K7;k7@example.de;;DE;;ABCDE;Graf\n"
        ";;;DE;;;\n"
        "K9;k9@example.de;;DE;12,5;;\n"
    )
    job = dry_run(csv_bytes(text))
    assert job.counts == {"new": 1, "updated": 0, "unchanged": 0, "skipped": 0, "invalid": 8}
    errors = errors_by_line(job)
    assert errors[3] == [("E-Mail", "“kaputt@” is not a valid e-mail address")]
    assert errors[4] == [("Geburtsdatum", "“31.02.1990” is not a possible date")]
    assert errors[5][0][0] == "Geburtsdatum" and "in the future" in errors[5][0][1]
    assert errors[6][0][0] == "Land" and "Atlantis" in errors[6][0][1]
    assert errors[7] == [("Anfangsbestand", "an opening balance cannot be negative")]
    assert {column for column, _message in errors[8]} == {"Anrede"}  # the postal code: a warning at most
    assert "customer number or an e-mail" in errors[9][0][1]
    assert errors[10] == [("Anfangsbestand", "points are whole numbers, not “12,5”")]


def test_messages_follow_the_job_language(tiers, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    job = imports.import_job_create(kind="members", upload=SimpleUploadedFile("k.csv", csv_bytes(
        "Kundennummer;E-Mail\nK1;kaputt@\n")), options={}, staff_user=None, language="de")
    job = imports.import_job_analyse(job_id=job.pk)
    assert job.errors[0]["line"] == 2 and job.errors[0]["column"] == "E-Mail"
    assert job.language == "de"


def test_confirm_is_refused_while_invalid_rows_are_not_skipped(tiers):
    job = dry_run(csv_bytes("Kundennummer;E-Mail\nK1;k1@example.de\nK2;kaputt@\n"))
    with pytest.raises(imports.ImportFileError):
        imports.import_job_confirm(job_id=job.pk, staff_user=None)
    job = confirm_and_run(job, skip_invalid=True)
    assert job.status == ImportJob.Status.DONE
    assert list(Member.objects.values_list("customer_number", flat=True)) == ["K1"]
    assert job.count_invalid == 1 and job.errors[0]["line"] == 3


def test_a_member_repeated_in_the_file_is_reported_and_imported_once(tiers):
    text = ("Kundennummer;E-Mail;Vorname;Anfangsbestand\n"
            "K1;a@example.de;Anna;100\n"
            "K1;other@example.de;Anna;100\n"
            "K2;A@EXAMPLE.DE;Anne;50\n"
            ";a@example.de;Anna;\n")
    job = full_import(csv_bytes(text))
    assert job.counts == {"new": 1, "updated": 0, "unchanged": 0, "skipped": 3, "invalid": 0}
    assert [warning["line"] for warning in job.warnings] == [3, 4, 5]
    assert "line 2" in job.warnings[0]["message"]
    member = Member.objects.get()
    assert member.customer_number == "K1" and member.points_balance == 100


def test_members_in_the_database_are_matched_by_customer_number_then_email(tiers):
    by_number = factories.enrolled_member(customer_number="K1", email="old@example.de", first_name="Alt")
    by_email = factories.enrolled_member(email="Erika@Example.de", first_name="Erika", last_name="Muster")
    text = ("Kundennummer;E-Mail;Vorname;Nachname\n"
            "K1;new@example.de;Neu;Muster\n"
            f";erika@example.de;Erika;Muster\n"
            f"{by_email.customer_number};;Erika;Mustermann\n"
            "K9;OLD@example.de;Olga;Alt\n")
    job = dry_run(csv_bytes(text))
    assert job.counts == {"new": 0, "updated": 1, "unchanged": 1, "skipped": 1, "invalid": 1}
    assert job.warnings[0]["line"] == 4 and "line 3" in job.warnings[0]["message"]
    assert errors_by_line(job)[5] == [("E-Mail", "the e-mail belongs to customer K1")]
    confirm_and_run(job, skip_invalid=True)
    by_number.refresh_from_db()
    assert (by_number.email, by_number.first_name, by_number.last_name) == ("new@example.de", "Neu", "Muster")
    assert Member.objects.count() == 2


def test_importing_the_same_file_twice_changes_nothing_the_second_time(tiers):
    text = GERMAN.replace("Anfangsbestand/Punkte", "Anfangsbestand/Punkte;Einwilligung E-Mail;Einwilligungsdatum;"
                                                   "Einwilligungsquelle")
    lines = text.strip().split("\n")
    lines[1] += ";ja;02.03.2021;Webshop DOI"
    lines[2] += ";nein;;"
    lines[3] += ";ja;;"
    content = csv_bytes("\n".join(lines) + "\n", "cp1252")
    first = full_import(content)
    assert first.counts["new"] == 3
    snapshot = (list(Member.objects.order_by("pk").values()), PointEntry.objects.count(),
                ConsentRecord.objects.count(), TierHistory.objects.count())

    second = full_import(content)
    assert second.status == ImportJob.Status.DONE
    assert second.counts == {"new": 0, "updated": 0, "unchanged": 3, "skipped": 0, "invalid": 0}
    after = (list(Member.objects.order_by("pk").values()), PointEntry.objects.count(),
             ConsentRecord.objects.count(), TierHistory.objects.count())
    assert after == snapshot


def test_a_changed_opening_balance_on_reimport_is_refused_not_booked_twice(tiers):
    full_import(csv_bytes("Kundennummer;E-Mail;Punkte\nK1;k1@example.de;100\n"))
    job = dry_run(csv_bytes("Kundennummer;E-Mail;Punkte\nK1;k1@example.de;150\n"))
    assert job.count_invalid == 1
    assert "100 points was imported before" in job.errors[0]["message"]
    assert Member.objects.get().points_balance == 100


def test_opening_balance_for_an_existing_member_goes_through_the_ledger(tiers):
    member = factories.enrolled_member(customer_number="K1")
    job = full_import(csv_bytes("Kundennummer;Punkte\nK1;70\n"))
    assert job.counts["updated"] == 1
    member.refresh_from_db()
    assert member.points_balance == 70 == member.point_entries.aggregate(total=Sum("points"))["total"]
    call_command("verify_ledger")


def test_consent_needs_proof_and_is_recorded_with_source_import(tiers):
    text = ("Kundennummer;E-Mail;Newsletter;Einwilligungsdatum;Einwilligungsquelle\n"
            "K1;k1@example.de;ja;02.03.2021;Webshop-Anmeldung mit Double-Opt-in\n"
            "K2;k2@example.de;ja;;\n"
            "K3;k3@example.de;nein;;\n"
            "K4;k4@example.de;;;\n")
    job = full_import(csv_bytes(text))
    assert job.counts["new"] == 4
    record = ConsentRecord.objects.get()
    assert record.member.customer_number == "K1"
    assert (record.purpose, record.granted, record.source) == ("email", True, "import")
    assert timezone.localtime(record.confirmed_at).date() == date(2021, 3, 2)
    assert record.text_version == "Webshop-Anmeldung mit Double-Opt-in"[:40]
    assert consent_given(record.member, ConsentRecord.Purpose.EMAIL)
    for number in ("K2", "K3", "K4"):
        assert not consent_given(Member.objects.get(customer_number=number), ConsentRecord.Purpose.EMAIL)
    assert any(warning["line"] == 3 and "consent" in warning["message"] for warning in job.warnings)


def test_a_withdrawal_after_the_proven_consent_stays_the_members_choice(tiers):
    member = factories.enrolled_member(customer_number="K1", email="k1@example.de")
    factories.ConsentRecordFactory(member=member, granted=False, source="unsubscribe", confirmed_at=None)
    full_import(csv_bytes("Kundennummer;Newsletter;Einwilligungsdatum;Einwilligungsquelle\n"
                          "K1;ja;02.03.2021;Messe 2021\n"))
    assert ConsentRecord.objects.filter(member=member, source="import").exists()
    assert not consent_given(member, ConsentRecord.Purpose.EMAIL)


def test_rows_without_customer_number_get_a_generated_one_and_match_by_email_again(tiers):
    content = csv_bytes("E-Mail;Vorname;Punkte\nneu@example.de;Nina;25\n")
    full_import(content)
    member = Member.objects.get()
    assert member.customer_number.startswith("K") and len(member.card_number) == 16
    assert member.point_entries.get().reference == f"import-opening:{member.customer_number}"
    again = full_import(content)
    assert again.counts["unchanged"] == 1 and Member.objects.count() == 1


def test_merged_and_erased_members_are_skipped(tiers):
    factories.enrolled_member(customer_number="K1")
    Member.objects.filter(customer_number="K1").update(status=Member.Status.ERASED)
    job = dry_run(csv_bytes("Kundennummer;Vorname\nK1;Neu\n"))
    assert job.counts["skipped"] == 1 and "erased" in job.warnings[-1]["message"]


def test_a_row_failing_while_writing_rolls_the_whole_file_back(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)  # the failing row is in a later chunk than the first writes
    rows = "".join(f"K{n};k{n}@example.de;10\n" for n in range(1, 7))
    job = dry_run(csv_bytes("Kundennummer;E-Mail;Punkte\n" + rows))
    assert job.counts["new"] == 6
    # Between the dry run and the confirmation somebody enrols with the e-mail of line 6.
    factories.enrolled_member(email="k5@example.de")
    job = confirm_and_run(job)
    assert job.status == ImportJob.Status.FAILED
    assert "line 6" in job.message and "Nothing was written" in job.message
    assert not Member.objects.filter(customer_number__in=[f"K{n}" for n in range(1, 7)]).exists()
    assert not PointEntry.objects.exists()


def test_xlsx_with_real_dates_and_numbers(tiers):
    content = xlsx_bytes([
        ["Kundennummer", "Vorname", "E-Mail", "Geburtsdatum", "PLZ", "Land", "Punkte", "Telefon"],
        [1001, "Hans", "hans@example.de", date(1960, 5, 17), 1067, "DE", 150.0, 4930123456],
        ["K-2", "Greta", "greta@example.de", "17.05.1961", "80331", "D", "1.000", ""],
    ])
    job = full_import(content, name="kunden.xlsx")
    assert job.status == ImportJob.Status.DONE, job.message
    hans = Member.objects.get(customer_number="1001")
    assert (hans.birth_date, hans.postal_code, hans.points_balance, hans.phone) == (
        date(1960, 5, 17), "01067", 150, "4930123456")
    assert Member.objects.get(customer_number="K-2").points_balance == 1000


def test_files_that_cannot_be_read_fail_with_a_message(tiers):
    assert "heading" not in dry_run(csv_bytes("Kundennummer;Vorname\nK1;A\n")).message
    job = dry_run(csv_bytes("Vorname;Nachname\nA;B\n"))
    assert job.status == ImportJob.Status.FAILED and "customer number / e-mail" in job.message
    job = dry_run(b"\xd0\xcf\x11\xe0 old excel", name="kunden.xls")
    assert job.status == ImportJob.Status.FAILED and ".xlsx" in job.message
    job = dry_run(b"   ")
    assert job.status == ImportJob.Status.FAILED


def test_excel_sep_hint_and_blank_lines(tiers):
    job = dry_run(csv_bytes("sep=,\nKundennummer,E-Mail\n\nK1,k1@example.de\n,\n"))
    assert job.delimiter == "," and job.counts["new"] == 1


def test_imported_balances_keep_the_ledger_invariant(tiers):
    rows = "".join(f"K{n};k{n}@example.de;{n * 10}\n" for n in range(1, 30))
    full_import(csv_bytes("Kundennummer;E-Mail;Punkte\n" + rows))
    call_command("verify_ledger")
    for member in Member.objects.all():
        assert member.points_balance == member.point_entries.aggregate(total=Sum("points"))["total"]


# The set-based writes (COPY, one UPDATE per chunk, opening balances at insert): the same guarantees
# over many chunks. CHUNK_ROWS = 2 makes every few rows a chunk of its own.

def _big_file(count: int, *, points: int = 10, extra: str = "") -> bytes:
    rows = "".join(f"K{n};k{n}@example.de;Vorname{n};{points + n};{'VIP, Kaffee' if n % 2 else ''};"
                   f"{'ja;02.03.2021;Messe' if n % 3 == 0 else ';;'}\n" for n in range(1, count + 1))
    return csv_bytes("Kundennummer;E-Mail;Vorname;Punkte;Tags;Newsletter;Einwilligungsdatum;Einwilligungsquelle\n"
                     + rows + extra)


def _state() -> tuple:
    return (list(Member.objects.order_by("pk").values()), list(PointEntry.objects.order_by("pk").values()),
            list(ConsentRecord.objects.order_by("pk").values()), list(TierHistory.objects.order_by("pk").values()),
            sorted(Member.tags.through.objects.values_list("member_id", "tag_id")))


def test_many_chunks_import_every_row_once_with_balances_equal_to_the_ledger(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    job = full_import(_big_file(11))
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.counts == {"new": 11, "updated": 0, "unchanged": 0, "skipped": 0, "invalid": 0}
    assert Member.objects.count() == 11 and TierHistory.objects.count() == 11
    assert ConsentRecord.objects.filter(source="import").count() == 3  # lines for K3, K6, K9
    assert Member.tags.through.objects.count() == 2 * 6  # the odd ones: VIP and Kaffee
    for member in Member.objects.all():
        number = int(member.customer_number[1:])
        assert member.points_balance == 10 + number == member.point_entries.get().points
        assert member.tier.rank == 0 and member.tier_history.get().cause == TierHistory.Cause.ENROLMENT
    call_command("verify_ledger")


def test_a_reimport_in_many_chunks_changes_nothing_however_often(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    content = _big_file(7)
    full_import(content)
    snapshot = _state()
    for _repeat in range(2):
        job = full_import(content)
        assert job.counts == {"new": 0, "updated": 0, "unchanged": 7, "skipped": 0, "invalid": 0}
        assert _state() == snapshot
    call_command("verify_ledger")


def test_existing_members_get_changed_fields_tier_history_tags_consent_and_credit_in_one_update(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    old = factories.enrolled_member(customer_number="K1", email="k1@example.de", first_name="Alt", city="Bonn")
    other = factories.enrolled_member(customer_number="K2", email="k2@example.de", first_name="Bleibt")
    text = ("Kundennummer;E-Mail;Vorname;Ort;Stufe;Tags;Punkte;Newsletter;Einwilligungsdatum;Einwilligungsquelle\n"
            "K1;K1@EXAMPLE.DE;Neu;;Gold;VIP;30;ja;02.03.2021;Messe\n"
            "K2;k2@example.de;;Köln;;;;;;\n"
            "K3;k3@example.de;Nina;;;;5;;;\n")
    job = full_import(csv_bytes(text))
    assert job.counts == {"new": 1, "updated": 2, "unchanged": 0, "skipped": 0, "invalid": 0}
    old.refresh_from_db()
    # Only what the file says changes: the e-mail differs only in case, the empty city keeps "Bonn".
    assert (old.first_name, old.city, old.email, old.tier.name_de) == ("Neu", "Bonn", "k1@example.de", "Gold")
    change = old.tier_history.filter(cause=TierHistory.Cause.STAFF).get()
    assert (change.from_tier.rank, change.to_tier.name_de) == (0, "Gold")
    assert list(old.tags.values_list("name", flat=True)) == ["VIP"]
    assert old.points_balance == 30 == old.point_entries.get().points
    assert consent_given(old, ConsentRecord.Purpose.EMAIL)
    other.refresh_from_db()
    assert (other.first_name, other.city) == ("Bleibt", "Köln")
    assert Member.objects.get(customer_number="K3").points_balance == 5
    call_command("verify_ledger")


def test_a_write_refused_by_the_ledger_in_a_later_chunk_rolls_back_the_whole_file(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    # An opening-balance reference already booked for somebody else: the ledger refuses it while
    # the third chunk is written, after the first two chunks' writes.
    someone = factories.enrolled_member()
    from rewards.ledger import BulkCredit, points_credit_bulk

    points_credit_bulk(credits=[BulkCredit(member_id=someone.pk, points=1, reference="import-opening:K5")],
                       source="import", reason="x")
    before = _state()
    job = full_import(_big_file(8))
    assert job.status == ImportJob.Status.FAILED
    assert "nothing was written" in job.message
    assert _state() == before
    assert Member.objects.count() == 1
    call_command("verify_ledger")


def test_import_collects_garbage_less_often_and_restores_the_threshold_afterwards(tiers):
    import gc

    before = gc.get_threshold()
    seen = []
    with importing._fewer_collections():
        seen.append(gc.get_threshold()[0])
        with importing._fewer_collections():  # an overlapping import
            seen.append(gc.get_threshold()[0])
        seen.append(gc.get_threshold()[0])
    assert seen == [max(importing.IMPORT_GC_THRESHOLD, before[0])] * 3
    assert gc.get_threshold() == before
    job = dry_run(csv_bytes(GERMAN, "cp1252"))
    assert job.status == ImportJob.Status.ANALYSED and gc.get_threshold() == before


def test_generated_card_and_customer_numbers_are_valid_and_skip_numbers_that_are_taken(tiers, monkeypatch):
    taken = factories.MemberFactory(card_number="92761234567890" + "1" + "0", customer_number="K000000007")
    taken.card_number = "927612345678901" + member_importers.luhn_check_digit("927612345678901")
    taken.save(update_fields=["card_number"])
    draws = {10**11: [[12345678901], [55555555555]], 10**9: [[7], [8]]}  # the first draw of each is taken
    monkeypatch.setattr(member_importers, "_random_below", lambda bound, count: draws[bound].pop(0)[:count])
    job = full_import(csv_bytes("E-Mail;Vorname\nneu@example.de;Neu\n"))
    assert job.status == ImportJob.Status.DONE, job.message
    member = Member.objects.get(email="neu@example.de")
    assert member.card_number == "927655555555555" + member_importers.luhn_check_digit("927655555555555")
    assert member.customer_number == "K000000008"
    assert member_importers.luhn_check_digit("7992739871") == "3"  # the textbook example


def test_a_file_cannot_give_a_paid_or_invitation_tier(tiers):
    factories.vip_tier()
    factories.enrolled_member(customer_number="K1", email="k1@example.de")
    job = full_import(csv_bytes("Kundennummer;E-Mail;Stufe\nK1;k1@example.de;VIP\n"), skip_invalid=True)
    assert job.counts["invalid"] == 1
    assert Member.objects.get(customer_number="K1").tier.name_de == "Basis"


def test_opening_balances_store_their_reason_as_key_and_parameters(tiers):
    from django.db import connection

    job = full_import(_big_file(3))
    assert job.status == ImportJob.Status.DONE, job.message
    with connection.cursor() as cursor:  # a JSON object, not a JSON string holding one
        cursor.execute("SELECT DISTINCT reason_code, jsonb_typeof(reason_params), reason_params::text "
                       "FROM rewards_pointentry WHERE source = 'import'")
        assert cursor.fetchall() == [("opening-balance", "object", "{}")]
