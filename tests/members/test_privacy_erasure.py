"""Erasure (Art. 17 DSGVO) leaves no copy of the person anywhere in the database, cancels their
vouchers and keeps the books; support and partners can export and erase; every request is
recorded without personal data."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from allauth.account.models import EmailAddress
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.contrib.admin.models import CHANGE
from django.contrib.admin.models import LogEntry as AdminLogEntry
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Message
from members.erasure import member_erase
from members.merge import member_merge
from members.models import Member, PrivacyRequest
from members.services import consent_record, member_link_or_enrol, member_update_profile
from partners.models import Scope, WebhookEvent
from referrals.models import Referral
from referrals.services import referral_attach
from rewards.ledger import points_adjust, points_credit
from rewards.models import PointEntry, Redemption
from rewards.selectors import ledger_mismatches
from rewards.tier_memberships import tier_membership_invite
from rewards.tiers import tier_override
from tests import factories
from tests.import_helpers import csv_bytes, full_import
from transfers.models import ImportJob

PERSON = {"email": "wilhelmina.quistorp@zypressen.example", "first_name": "Wilhelmina",
          "last_name": "Quistorp-Zeller", "phone": "+49 171 5550199", "street": "Zypressenweg 42",
          "postal_code": "06484", "city": "Quedlinburg", "birth_date": "1971-02-03", "salutation": "ms"}
DUPLICATE = {"email": "wilma.qz@lindenhof.example", "first_name": "Wilmarie", "last_name": "Quastenberg",
             "phone": "+49 3946 777123", "street": "Lindenhofgasse 9", "birth_date": date(1971, 2, 4)}
MEMBER_IP, OTHER_IP = "198.51.100.77", "203.0.113.201"

# Every column that can hold text, JSON, an IP address or a date, in every table of the schema.
TEXT_COLUMNS = """
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = 'public'
      AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'inet', 'date', 'ARRAY')
    ORDER BY table_name, column_name
"""


@pytest.fixture
def member(tiers, partner):
    """A member the test partner reaches through the API (enrolled with it)."""
    return factories.relate(factories.enrolled_member(), partner)


def database_hits(values: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) for every value found anywhere in the database's text: a plain-text
    dump, searched column by column."""
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(TEXT_COLUMNS)
        columns = cursor.fetchall()
        assert len(columns) > 200  # the whole schema, not an empty search
        for table, column in columns:
            for value in values:
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',
                               [f"%{value}%"])
                if cursor.fetchone()[0]:
                    hits.append((table, column, value))
    return hits


def _seed_everywhere(api, partner):
    """The member as a busy partner, portal and support desk leave them: enrolled through the API
    (a stored response, a webhook payload), with a portal login and sessions, consents from an IP
    address, audit entries, staff reasons naming them, an import with an opening balance, a
    referral, feedback, a sent message, an export selection and a merged duplicate."""
    factories.WebhookSubscriptionFactory(partner=partner, events=list(WebhookEvent.values))
    enrolled = api.post("/members/", dict(PERSON))
    assert enrolled.status_code == 201, enrolled.content
    member = Member.objects.get(public_id=enrolled.json()["id"])
    updated = api.patch(f"/members/{member.public_id}/", {"street": PERSON["street"], "phone": PERSON["phone"]})
    assert updated.status_code == 200, updated.content

    user = factories.UserFactory(email=PERSON["email"], first_name="Willa", last_name="Quistorp-Zeller")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    assert member_link_or_enrol(user=user, email=user.email).pk == member.pk
    Client().force_login(user)
    with set_actor(user, remote_addr=MEMBER_IP):
        member_update_profile(member_id=member.pk, city="Quedlinburg-Altstadt")
        consent_record(member=member, purpose="sms", granted=True, source="portal", ip_address=MEMBER_IP)
        reward = factories.RewardFactory(points_cost=10)
        LogEntry.objects.log_create(reward, action=LogEntry.Action.UPDATE, force_log=True,
                                    changes={"note": ["", f"asked by Willa, {PERSON['email']}"]})

    staff = factories.StaffUserFactory()
    AdminLogEntry.objects.log_actions(user_id=staff.pk, queryset=[member], action_flag=CHANGE,
                                      change_message="[]", single_object=True)
    points_credit(member_id=member.pk, points=500, reason="Willkommen")
    points_adjust(member_id=member.pk, points=5, staff_user=staff,
                  reason=f"Kulanz für Frau {PERSON['last_name']}, Tel. {PERSON['phone']}")
    tier_override(member_id=member.pk, tier=member.tier, reason=f"VIP {PERSON['first_name']} {PERSON['last_name']}",
                  staff_user=staff)
    tier_membership_invite(member_id=member.pk, tier=factories.invitation_tier(), staff_user=staff,
                           reason=f"Presse, {PERSON['first_name']} {PERSON['last_name']}",
                           ends=timezone.localdate() + timedelta(days=30))

    bought = api.post("/purchases/", {"member_id": str(member.public_id), "order_reference": "ZQ-1", "amount": "20.00",
                                      "currency": "EUR", "store": "S1"})
    assert bought.status_code == 201, bought.content
    reward = factories.RewardFactory(points_cost=100)
    voucher = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk})
    assert voucher.status_code == 201, voucher.content

    job = full_import(csv_bytes(
        "Customer number,E-mail,First name,Last name,Opening balance,Birth date\n"
        f"{member.customer_number},{PERSON['email']},Wilhelmina,Quistorp-Zeller,50,03.02.1971\n"
        f"K0000000001,{PERSON['email']},Wilhelmina,Quistorp-Zeller,x,03.02.1971\n"), skip_invalid=True)
    assert job.status == ImportJob.Status.DONE, job.message
    assert PointEntry.objects.filter(member=member, reference=f"import-opening:{member.customer_number}").exists()
    # A report that quotes a row (an e-mail given twice in one file names it).
    factories.ImportJobFactory(errors=[{"line": 3, "column": "E-Mail", "message": f"{PERSON['email']} twice"}],
                               dry_run={"sample": [{"name": f"{PERSON['first_name']} {PERSON['last_name']}"}]})
    factories.ExportLogFactory(filters=f"q={PERSON['email']}")

    factories.ReferralProgramFactory()
    referrer = factories.enrolled_member(email="friend@example.org")
    referral = referral_attach(referee_id=member.pk, code=factories.referral_code(referrer), channel="staff")
    Referral.objects.filter(pk=referral.pk).update(reject_reason=f"Same household as {PERSON['last_name']}")
    factories.ComplaintFactory(member=member, subject=f"Beschwerde {PERSON['last_name']}",
                               description=f"Rückruf bitte unter {PERSON['phone']}")
    factories.ResponseFactory(member=member, comment=f"Grüße, {PERSON['first_name']}")
    factories.MessageFactory(campaign=factories.CampaignFactory(), member=member, to_address=PERSON["email"],
                             status=Message.Status.FAILED, error=f"550 <{PERSON['email']}> mailbox full")

    duplicate = factories.enrolled_member(**DUPLICATE)
    # The duplicate had its own portal login: the merge detaches it (the survivor keeps its own).
    duplicate_login = factories.UserFactory(email=DUPLICATE["email"])
    EmailAddress.objects.create(user=duplicate_login, email=DUPLICATE["email"], verified=True, primary=True)
    assert member_link_or_enrol(user=duplicate_login, email=DUPLICATE["email"]).pk == duplicate.pk
    consent_record(member=duplicate, purpose="email", granted=True, source="portal", ip_address=OTHER_IP)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk, reason=f"same person as {DUPLICATE['email']}")
    member.refresh_from_db()
    duplicate.refresh_from_db()
    return member, duplicate, voucher.json()


def _personal_values(member: Member, duplicate: Member) -> list[str]:
    values = [value for key, value in PERSON.items() if key not in ("salutation", "postal_code", "city")]
    values += ["Willa", "03.02.1971", MEMBER_IP, OTHER_IP, member.card_number, member.customer_number,
               duplicate.card_number, duplicate.customer_number, "04.02.1971", "1971-02-04"]
    values += [value for key, value in DUPLICATE.items() if key != "birth_date"]
    return values


def test_after_erasure_the_database_holds_no_personal_value_of_the_member(api, partner):
    member, duplicate, _voucher = _seed_everywhere(api, partner)
    values = _personal_values(member, duplicate)
    before = database_hits(values)
    # The seed did reach the places this test is about (else it would prove nothing).
    seeded = {table for table, _column, _value in before}
    assert {"members_member", "auditlog_logentry", "django_admin_log", "loyalty_site_idempotencyrecord",
            "loyalty_site_webhookdelivery", "members_importjob", "members_exportlog", "rewards_pointentry",
            "referrals_referral", "feedback_complaint", "feedback_response", "campaigns_message",
            "members_consentrecord", "auth_user", "account_emailaddress", "members_tierhistory",
            "members_membermerge"} <= seeded, seeded

    response = api.post(f"/members/{member.public_id}/erasure/", {})
    assert response.status_code == 200, response.content

    assert database_hits(values) == []
    assert ledger_mismatches() == []
    call_command("verify_ledger")  # exits non-zero on a mismatch
    assert PointEntry.objects.filter(member=member).count() > 3  # the ledger rows stay, anonymised


def test_erasure_cancels_open_vouchers_so_a_till_refuses_them(api, member):
    points_credit(member_id=member.pk, points=500, reason="Start")
    reward = factories.RewardFactory(points_cost=200)
    voucher = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk}).json()
    assert api.post("/vouchers/validate/", {"code": voucher["code"], "store": "S1"}).status_code == 200

    member_erase(member_id=member.pk)

    assert Redemption.objects.get(pk=voucher["id"]).status == Redemption.Status.CANCELLED
    refused = api.post("/vouchers/validate/", {"code": voucher["code"], "store": "S1"})
    assert refused.status_code == 422 and refused.json()["code"] == "voucher_invalid"
    assert api.post("/vouchers/consume/", {"code": voucher["code"], "store": "S1"}).status_code == 422
    # The voucher's points came back and were forfeited with the rest: the books add up.
    assert Member.objects.get(pk=member.pk).points_balance == 0 and ledger_mismatches() == []


def test_the_ledger_still_refuses_changes_to_points_outside_an_erasure(member):
    from django.db import DataError, IntegrityError, InternalError, transaction

    entry = points_credit(member_id=member.pk, points=5, reason="x")
    entry_id = entry.pk if hasattr(entry, "pk") else PointEntry.objects.get(member=member).pk
    with pytest.raises((IntegrityError, InternalError, DataError)), transaction.atomic():
        PointEntry.objects.filter(pk=entry_id).update(reason="changed")
    with pytest.raises((IntegrityError, InternalError, DataError)), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL treuepunkt.ledger_anonymise = 'on'")
        PointEntry.objects.filter(pk=entry_id).update(points=6)  # even then, only texts may change
    member_erase(member_id=member.pk)  # switches the permission on and off again
    with pytest.raises((IntegrityError, InternalError, DataError)), transaction.atomic():
        PointEntry.objects.filter(pk=entry_id).update(reason="changed")


# --- Partner API -------------------------------------------------------------------------------

def test_a_partner_with_the_erase_scope_erases_a_member_once(api, partner, member):
    consent_record(member=member, purpose="sms", granted=True, source="staff")
    key = "erase-" + str(member.pk)
    response = api.post(f"/members/{member.public_id}/erasure/", {}, idempotency_key=key)
    assert response.status_code == 200, response.content
    assert response.json()["member_id"] == str(member.public_id) and response.json()["status"] == "erased"
    assert Member.objects.get(pk=member.pk).status == Member.Status.ERASED
    replay = api.post(f"/members/{member.public_id}/erasure/", {}, idempotency_key=key)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert api.get(f"/members/{member.public_id}/").status_code == 404
    withdrawal = member.consents.order_by("-id").first()
    assert (withdrawal.granted, withdrawal.source) == (False, "api")
    request = PrivacyRequest.objects.get()
    assert (request.kind, request.channel, request.partner, request.staff_user) == (
        "erasure", "api", partner, None)


def test_erasure_through_the_api_needs_its_own_scope_and_an_idempotency_key(api, partner, member):
    writer = api.with_key(factories.PartnerAPIKeyFactory(
        partner=partner, scopes=[Scope.MEMBERS_READ, Scope.MEMBERS_WRITE]).raw_key)
    assert writer.post(f"/members/{member.public_id}/erasure/", {}).status_code == 403
    assert api.post(f"/members/{member.public_id}/erasure/", {}, idempotency_key=None).status_code == 400
    assert api.post(f"/members/{member.public_id}/erasure/", {"reason": "x"}).status_code == 400
    assert Member.objects.get(pk=member.pk).status == Member.Status.ACTIVE
    assert not PrivacyRequest.objects.exists()


# --- Console -----------------------------------------------------------------------------------

@pytest.fixture
def till_member(tiers):
    """Imported or enrolled at a till: no portal login, so only support can act for them."""
    member = factories.enrolled_member(email="till.only@example.org", first_name="Theodora", last_name="Kassenbon")
    points_credit(member_id=member.pk, points=120, reason="Altbestand")
    return member


def _console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_support_erases_a_member_from_the_console_after_confirming(till_member):
    support = factories.staff_in("Support")
    console = _console(support)
    url = reverse("admin:members_member_erase", args=[till_member.pk])
    page = console.get(url)
    assert page.status_code == 200 and 'name="confirm"' in page.content.decode()
    refused = console.post(url, {})  # not confirmed: nothing happens
    assert refused.status_code == 200
    assert Member.objects.get(pk=till_member.pk).status == Member.Status.ACTIVE

    response = console.post(url, {"confirm": "on"})
    assert response.status_code == 302
    erased = Member.objects.get(pk=till_member.pk)
    assert erased.status == Member.Status.ERASED and erased.email == "" and erased.points_balance == 0
    request = PrivacyRequest.objects.get()
    assert (request.kind, request.channel, request.staff_user, request.member_id) == (
        "erasure", "console", support, till_member.pk)


def test_support_exports_a_members_data_from_the_console_after_confirming(till_member):
    support = factories.staff_in("Support")
    console = _console(support)
    url = reverse("admin:members_member_export_data", args=[till_member.pk])
    assert console.get(url).status_code == 200
    assert console.post(url, {}).status_code == 200 and not PrivacyRequest.objects.exists()
    response = console.post(url, {"confirm": "on"})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["profile"]["email"] == "till.only@example.org" and data["ledger"][0]["points"] == 120
    request = PrivacyRequest.objects.get()
    assert (request.kind, request.channel, request.staff_user) == ("export", "console", support)


def test_the_member_page_offers_export_and_erasure_to_support(till_member):
    page = _console(factories.staff_in("Support")).get(reverse("admin:members_member_change",
                                                                args=[till_member.pk])).content.decode()
    assert reverse("admin:members_member_export_data_action", args=[till_member.pk]) in page
    assert reverse("admin:members_member_erase_action", args=[till_member.pk]) in page


@pytest.mark.parametrize("role", ["Marketing", "Finance"])
def test_other_roles_can_neither_export_nor_erase(till_member, role):
    console = _console(factories.staff_in(role))
    for name in ("admin:members_member_erase", "admin:members_member_export_data"):
        url = reverse(name, args=[till_member.pk])
        assert console.get(url).status_code == 403
        assert console.post(url, {"confirm": "on"}).status_code == 403
    assert Member.objects.get(pk=till_member.pk).status == Member.Status.ACTIVE
    assert not PrivacyRequest.objects.exists()


# --- The audit of requests ---------------------------------------------------------------------

def test_every_export_and_erasure_is_recorded_without_personal_data(client, tiers, settings):
    from members.privacy import retention_run

    user = factories.UserFactory(email="portal.person@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    client.force_login(user)
    assert client.get(reverse("portal:export")).status_code == 200
    member_erase(member_id=member.pk)
    settings.LOYALTY_RETENTION_INACTIVE_DAYS, settings.LOYALTY_RETENTION_WARNING_DAYS = 10, 0
    sleeper = factories.enrolled_member(email="sleeper@example.org")
    Member.objects.filter(pk=sleeper.pk).update(joined_at="2020-01-01T00:00Z", retention_warned_at="2020-02-01T00:00Z")
    retention_run()

    recorded = list(PrivacyRequest.objects.order_by("id").values_list("member_id", "kind", "channel"))
    assert recorded == [(member.pk, "export", "portal"), (member.pk, "erasure", "portal"),
                        (sleeper.pk, "erasure", "retention")]
    text = " ".join(str(value) for row in PrivacyRequest.objects.values() for value in row.values())
    assert "portal.person" not in text and "sleeper@" not in text
