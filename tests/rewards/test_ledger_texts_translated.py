"""Ledger texts are translated when shown, not stored in the writer's language (#23): an entry
booked while German was active reads in English in an English portal, API answer, export and
console, and the other way round. Old rows (text only) are recognised when shown."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation

from campaigns import raffles
from campaigns import services as campaign_services
from campaigns.models import Campaign
from core.stored_texts import recognise, shown_text, stored_text
from feedback import services as feedback_services
from members.gdpr import member_export_data
from members.models import Member
from members.services import member_link_or_enrol
from rewards.ledger import BulkCredit, points_credit, points_credit_bulk, points_expire_due
from rewards.models import PointEntry
from rewards.purchases import purchase_record
from tests import factories


@pytest.fixture
def portal_member(tiers):
    user = factories.UserFactory(email="erika@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    Member.objects.filter(pk=member.pk).update(first_name="Erika", points_balance=0)
    member.refresh_from_db()
    return member


def activity(client, member, language: str) -> str:
    client.force_login(member.user)
    with translation.override(language):
        url = reverse("portal:activity")
    return client.get(url, headers={"accept-language": language}).content.decode()


def api_reasons(api, member, language: str) -> list[str]:
    answer = api.get(f"/members/{member.public_id}/entries/", headers={"Accept-Language": language})
    return [entry["reason"] for entry in answer.json()["results"]]


# --- The API, the export and the console ------------------------------------------------------

def test_a_purchase_booked_in_german_reads_in_english_in_the_api_and_german_in_german(
        api, member, german_catalogue):
    with translation.override("de"):
        purchase_record(member_id=member.pk, partner=api.partner, order_reference="R-17", amount=Decimal("20"))
    assert api_reasons(api, member, "en") == ["Purchase R-17"]
    assert api_reasons(api, member, "de") == ["Einkauf R-17"]


def test_an_entry_booked_in_english_reads_in_german_in_a_german_data_export(member, german_catalogue):
    with translation.override("en"):
        points_credit(member_id=member.pk, points=50, reason=stored_text("opening-balance"))
    with translation.override("de"):
        exported = member_export_data(member)["ledger"]
    assert [row["reason"] for row in exported] == ["Anfangsbestand (Import)"]


def test_the_console_ledger_shows_the_reason_in_the_staff_users_language(admin_client, member, german_catalogue):
    with translation.override("de"):
        points_credit(member_id=member.pk, points=50, reason=stored_text("member-erased"))
    page = admin_client.get("/en/admin/rewards/pointentry/").content.decode()
    assert "Points forfeited: the account was erased at the member&#x27;s request" in page
    assert "Punkte verfallen" not in page


def test_staff_free_text_is_shown_as_typed(api, member, german_catalogue):
    from rewards.ledger import points_adjust

    factories.relate(member, api.partner)
    points_adjust(member_id=member.pk, points=5, reason="Kulanz, Kassenfehler am 3.12.", staff_user=None)
    assert api_reasons(api, member, "en") == ["Kulanz, Kassenfehler am 3.12."]


# --- Raffle entries, goodwill and survey texts in the portal ------------------------------------

def test_a_raffle_entry_made_in_german_reads_in_english_in_the_portal(client, portal_member, german_catalogue):
    Member.objects.filter(pk=portal_member.pk).update(points_balance=100)
    factories.PointEntryFactory(member=portal_member, points=100)
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, name="Sommerverlosung", winners_count=1,
                                         prize=factories.RewardFactory(in_catalogue=False), entry_points=30,
                                         entry_deadline=timezone.now() + timedelta(days=2))
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    campaign_services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    with translation.override("de"):
        raffles.raffle_enter(campaign_id=campaign.pk, member_id=portal_member.pk)
    english = activity(client, portal_member, "en")
    assert "Raffle entry: Sommerverlosung" in english and "Gewinnspielteilnahme" not in english
    assert "Gewinnspielteilnahme: Sommerverlosung" in activity(client, portal_member, "de")


def test_complaint_goodwill_given_in_german_reads_in_english_in_the_portal(client, portal_member,
                                                                          german_catalogue):
    complaint = factories.ComplaintFactory(member=portal_member)
    with translation.override("de"):
        feedback_services.complaint_goodwill_points(complaint_id=complaint.pk, points=200, staff_user=None)
    english = activity(client, portal_member, "en")
    assert f"Goodwill for complaint {complaint.number}" in english and "Kulanz" not in english
    assert f"Kulanz zu Reklamation {complaint.number}" in activity(client, portal_member, "de")


def test_a_survey_thank_you_reads_in_the_readers_language_with_the_question_in_it(
        client, portal_member, german_catalogue):
    survey = factories.SurveyFactory(reward_points=20, active=True)
    with translation.override("de"):
        feedback_services.response_record(survey_id=survey.pk, member_id=portal_member.pk, score=9, channel="portal")
    english = activity(client, portal_member, "en")
    assert "Thank you for your feedback: How likely are you to recommend us to a friend?" in english
    assert "Vielen Dank für Ihr Feedback" not in english
    german = activity(client, portal_member, "de")
    assert "Vielen Dank für Ihr Feedback: Wie wahrscheinlich ist es, dass Sie uns weiterempfehlen?" in german


# --- Rows written before the keys: recognised when shown ----------------------------------------

def test_an_old_german_row_without_a_key_reads_in_english(client, portal_member, api, german_catalogue):
    factories.PointEntryFactory(member=portal_member, kind=PointEntry.Kind.BONUS, points=40,
                                reason="Gewinnspielteilnahme: Herbst", source="x")
    assert recognise("Gutschein storniert: Kaffee").code == "voucher-cancelled"
    assert recognise("Voucher: cancelled").code == "voucher"
    assert "Raffle entry: Herbst" in activity(client, portal_member, "en")


def test_an_unknown_stored_text_is_shown_as_stored():
    assert shown_text("", {}, "Irgendein Text") == "Irgendein Text"
    assert shown_text("no-such-key", {}, "Irgendein Text") == "Irgendein Text"


# --- Every way of writing an entry stores the key -------------------------------------------------

def test_a_raw_insert_that_names_neither_new_column_still_works(member, german_catalogue):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO rewards_pointentry (member_id, kind, points, created_at, reason, source, "
                       "reference) VALUES (%s, 'bonus', 5, now(), 'Einkauf X-1', '', '') RETURNING reason_code, "
                       "reason_params", [member.pk])
        assert cursor.fetchone() == ("", "{}")
    entry = PointEntry.objects.get(member=member)
    with translation.override("en"):
        assert entry.shown_reason == "Purchase X-1"


def test_bulk_credits_and_the_expiry_job_store_their_keys(member):
    points_credit_bulk(credits=[BulkCredit(member_id=member.pk, points=7, reference="o-1")], source="import-opening",
                       reason=stored_text("opening-balance"))
    PointEntry.objects.filter(member=member)  # the credit expires in the past for the job below
    points_expire_due(now=timezone.now() + timedelta(days=3650))
    codes = sorted(PointEntry.objects.filter(member=member).values_list("reason_code", "kind"))
    assert codes == [("opening-balance", "bonus"), ("points-expired", "expire")]


def test_erasure_scrubs_customer_numbers_from_the_parameters(member):
    from members.privacy import PersonalValues  # noqa: F401 - the scrubber below is registered on import
    from rewards.privacy import scrub_ledger_texts

    entry = points_credit(member_id=member.pk, points=5,
                          reason=stored_text("member-merged", duplicate=member.customer_number, survivor="K-9"))

    class Values:
        def scrub(self, value):
            if isinstance(value, dict):
                return {key: self.scrub(item) for key, item in value.items()}
            return value.replace(member.customer_number, "XXX") if isinstance(value, str) else value

    scrub_ledger_texts([member.pk], Values())
    entry.refresh_from_db()
    assert entry.reason_params == {"duplicate": "XXX", "survivor": "K-9"}
    assert member.customer_number not in entry.reason
