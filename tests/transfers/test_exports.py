"""Exports from the console: only for staff allowed to export that kind of data, logged before a
byte leaves, and cells a spreadsheet would run as formulas escaped, in CSV and in Excel."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from rewards.purchases import purchase_record
from tests import factories
from transfers.models import ExportLog


@pytest.fixture
def shopper(tiers, partner, base_rule):
    member = factories.enrolled_member(first_name="=HYPERLINK(\"http://evil.example\")", last_name="+491234",
                                       city="@SUM(A1:A9)")
    purchase_record(member_id=member.pk, partner=partner, order_reference="-2+3", amount=Decimal("50"))
    return member


def _export(client, changelist: str, ids: list[int], file_format: str = "csv"):
    return client.post(reverse(f"admin:{changelist}_changelist"),
                       {"action": f"export_{file_format}", ACTION_CHECKBOX_NAME: ids})


def _csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body), delimiter=";"))


EXPORTS = {
    # changelist -> who may export it (the rest get no export action, and a forged POST exports nothing)
    "members_member": {"Administrator", "Marketing"},  # Marketing: the lists its campaigns need (#23)
    "rewards_pointentry": {"Administrator", "Finance"},
    "rewards_purchase": {"Administrator", "Finance"},
}


@pytest.mark.parametrize("group_name", ["Marketing", "Support", "Finance", "Administrator"])
@pytest.mark.parametrize("changelist", list(EXPORTS))
def test_each_role_exports_only_what_it_may(client, shopper, group_name, changelist):
    client.force_login(factories.staff_in(group_name))
    page = client.get(reverse(f"admin:{changelist}_changelist"))
    allowed = group_name in EXPORTS[changelist]
    if page.status_code == 403:
        assert not allowed
        return
    assert ('value="export_csv"' in page.content.decode()) == allowed
    model = page.context["cl"].model
    response = _export(client, changelist, list(model.objects.values_list("pk", flat=True)))
    exported = response.status_code == 200 and response.get("Content-Type", "").startswith("text/csv")
    assert exported == allowed
    assert ExportLog.objects.exists() == allowed


def test_a_member_export_is_logged_and_escapes_formulas(client, shopper):
    admin = factories.staff_in("Administrator")
    client.force_login(admin)
    rows = _csv_rows(_export(client, "members_member", [shopper.pk]))
    cells = {cell for row in rows[1:] for cell in row}
    assert {"'=HYPERLINK(\"http://evil.example\")", "'@SUM(A1:A9)"} <= cells
    assert "+491234" in cells  # a phone-like number is a number to a spreadsheet, not a formula
    assert not any(cell.startswith(("=", "@")) for cell in cells)
    log = ExportLog.objects.get()
    assert (log.kind, log.file_format, log.row_count, log.created_by) == ("members", "csv", 1, admin)


def test_an_excel_export_holds_text_not_formulas(client, shopper):
    client.force_login(factories.staff_in("Administrator"))
    response = _export(client, "members_member", [shopper.pk], file_format="xlsx")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = [cell.value for row in sheet.iter_rows(min_row=2) for cell in row if isinstance(cell.value, str)]
    assert any(value.startswith("'=HYPERLINK") for value in values)
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)  # no formula cells at all


def test_the_ledger_export_for_finance_keeps_negative_numbers_as_numbers(client, shopper):
    from rewards.ledger import points_debit

    points_debit(member_id=shopper.pk, points=20, reason="Gutschein")
    client.force_login(factories.staff_in("Finance"))
    from rewards.models import PointEntry

    rows = _csv_rows(_export(client, "rewards_pointentry", list(PointEntry.objects.values_list("pk", flat=True))))
    assert any("-20" in row for row in rows[1:])


def test_survey_answers_export_with_their_comments_for_staff_allowed_personal_data(client, shopper):
    survey = factories.SurveyFactory(name="NPS Filiale")
    answer = factories.ResponseFactory(survey=survey, score=3, comment="=cmd|' /C calc'!A0", member=shopper)
    client.force_login(factories.staff_in("Support"))  # handles feedback, but may not export personal data
    assert 'value="export_csv"' not in client.get(reverse("admin:feedback_response_changelist")).content.decode()
    client.force_login(factories.staff_in("Administrator"))
    rows = _csv_rows(_export(client, "feedback_response", [answer.pk]))
    assert rows[1][1:5] == ["NPS Filiale", "nps", "3", "'=cmd|' /C calc'!A0"]
    assert rows[1][-1] == shopper.customer_number
    assert ExportLog.objects.get().kind == "answers"
