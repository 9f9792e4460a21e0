"""Webhook announcements from domain events (members.announcements): who hears of what, the
payload, one query and one INSERT per batch, and every enrolment path announcing itself."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.events import capture, publish
from feedback import services as feedback_services
from feedback.events import ComplaintClosed, SurveyAnswered
from members.announcements import announce
from members.events import MemberEnrolled, MemberErased
from members.merge import member_merge
from members.models import Member
from members.services import member_enrol
from partners.api.webhooks import WebhookSubscriptionSerializer
from partners.models import WebhookDelivery, WebhookEvent
from partners.webhooks import webhook_subscribers
from referrals import services as referral_services
from referrals.events import ReferralRewarded
from referrals.models import Referral
from rewards.ledger import points_credit
from rewards.purchases import purchase_record
from tests import factories
from tests.import_helpers import csv_bytes, full_import

pytestmark = pytest.mark.django_db

PASSWORD = "Lindenblüte-42-Kaffee"


def subscribed(partner, *events: str):
    return factories.WebhookSubscriptionFactory(partner=partner, events=list(events))


def deliveries() -> list[tuple[str, str, dict]]:
    """(partner name, event, payload) of every delivery, in order."""
    return [(delivery.subscription.partner.name, delivery.event, delivery.payload)
            for delivery in WebhookDelivery.objects.select_related("subscription__partner").order_by("id")]


def heard(event: str) -> list[str]:
    return [name for name, delivered, _payload in deliveries() if delivered == event]


@pytest.fixture
def shops(db):
    """Three partners: A and C know the member, B does not."""
    return {name: factories.PartnerFactory(name=name) for name in ("A", "B", "C")}


@pytest.fixture
def known(tiers, shops):
    member = factories.enrolled_member()
    factories.relate(member, shops["A"])
    factories.relate(member, shops["C"], store=factories.StoreFactory(partner=shops["C"]))
    return member


def _announce(*events) -> None:
    with transaction.atomic():
        publish(list(events))


# --- Who hears of an event -------------------------------------------------------------------------

def test_an_event_from_a_partners_call_goes_to_that_partner_only(known, shops):
    for partner in shops.values():
        subscribed(partner, WebhookEvent.REFERRAL_REWARDED)
    _announce(ReferralRewarded(member_id=known.pk, partner_id=shops["C"].pk, referral_id=1, referee_id=2))
    assert heard("referral.rewarded") == ["C"]


def test_an_event_from_the_portal_console_import_or_a_job_goes_to_every_related_partner(known, shops):
    for partner in shops.values():
        subscribed(partner, WebhookEvent.REFERRAL_REWARDED)
    _announce(ReferralRewarded(member_id=known.pk, referral_id=1, referee_id=2))
    assert sorted(heard("referral.rewarded")) == ["A", "C"]  # B does not know the member


def test_a_partner_hears_only_the_events_it_subscribed_to(known, shops):
    subscribed(shops["A"], WebhookEvent.MEMBER_ENROLLED)
    subscribed(shops["C"], WebhookEvent.REFERRAL_REWARDED, WebhookEvent.MEMBER_ENROLLED)
    _announce(ReferralRewarded(member_id=known.pk, referral_id=1, referee_id=2))
    assert [(name, event) for name, event, _payload in deliveries()] == [("C", "referral.rewarded")]


def test_an_erasure_goes_to_every_related_partner_with_the_ids_to_delete(known, shops, tiers):
    for partner in shops.values():
        subscribed(partner, WebhookEvent.MEMBER_ERASED)
    duplicate = factories.enrolled_member()
    member_merge(survivor_id=known.pk, duplicate_id=duplicate.pk, reason="same person")
    # Asked for by A: C holds a copy too and must delete it; B never knew the member.
    _announce(MemberErased(member_id=known.pk, partner_id=shops["A"].pk))
    assert sorted(heard("member.erased")) == ["A", "C"]
    payload = deliveries()[0][2]
    assert payload == {"member_id": str(known.public_id), "merged_member_ids": [str(duplicate.public_id)]}


def test_a_complaint_about_a_partners_store_is_closed_for_that_partner_only(known, shops):
    for partner in shops.values():
        subscribed(partner, WebhookEvent.COMPLAINT_CLOSED)
    store_of_b = factories.StoreFactory(partner=shops["B"])
    about_b = feedback_services.complaint_open(member_id=known.pk, category="service", subject="Kalt",
                                               description="Der Kaffee war kalt.", channel="portal", store=store_of_b)
    general = feedback_services.complaint_open(member_id=known.pk, category="points", subject="Punkte",
                                               description="Punkte fehlen.", channel="portal")
    for complaint in (about_b, general):
        feedback_services.complaint_set_status(complaint_id=complaint.pk, status="closed")
    # B's store: B only (not A or C, who merely know the member); the programme's own: nobody.
    assert deliveries() == [("B", "complaint.closed", {"member_id": str(known.public_id),
                                                        "complaint_id": about_b.pk, "status": "closed",
                                                        "category": "service"})]


def test_a_survey_answer_goes_only_to_the_partner_it_was_given_through(known, shops, api, partner):
    subscribed(partner, WebhookEvent.SURVEY_ANSWERED)
    for other in shops.values():
        subscribed(other, WebhookEvent.SURVEY_ANSWERED)
    survey = factories.SurveyFactory()
    answered = api.post("/survey-responses/", {"survey_id": survey.pk, "score": 3, "comment": "Zu voll, Frau Meier",
                                               "card_number": known.card_number, "store": "S1"})
    assert answered.status_code == 201, answered.text
    feedback_services.response_record(survey_id=survey.pk, member_id=known.pk, score=9, channel="portal")
    feedback_services.response_record(survey_id=survey.pk, score=10, channel="api", partner=shops["B"])
    assert deliveries() == [
        (partner.name, "survey.answered", {"member_id": str(known.public_id), "survey_id": survey.pk,
                                           "response_id": answered.json()["id"], "score": 3}),
        ("B", "survey.answered", {"member_id": None, "survey_id": survey.pk,
                                  "response_id": deliveries()[1][2]["response_id"], "score": 10}),
    ]  # the portal answer went to nobody; the comment never leaves


def test_a_referral_paid_by_the_beat_job_goes_to_the_referrers_partners_only(tiers, shops):
    factories.ReferralProgramFactory()
    referrer = factories.enrolled_member(email="anna.berger@gmail.com", city="Berlin")
    factories.relate(referrer, shops["A"])
    referee = factories.enrolled_member(email="ben@example.org", city="München")
    for partner in shops.values():
        subscribed(partner, WebhookEvent.REFERRAL_REWARDED)
    referral = referral_services.referral_attach(referee_id=referee.pk, code=factories.referral_code(referrer),
                                                 channel="signup")
    purchase_record(member_id=referee.pk, partner=shops["B"], order_reference="R-1", amount=Decimal("50"))
    assert referral_services.referrals_release_due(now=timezone.now() + timedelta(days=15)) == 1
    # B knows only the referee: it must not learn who referred them.
    assert deliveries() == [("A", "referral.rewarded", {"member_id": str(referrer.public_id),
                                                        "referral_id": referral.pk, "points": 500})]


# --- Batches --------------------------------------------------------------------------------------

def test_a_batch_of_events_costs_one_query_and_one_insert(tiers, shops):
    members = [factories.enrolled_member() for _ in range(30)]
    for member in members:
        factories.relate(member, shops["A"])
        factories.relate(member, shops["C"])
    for partner in shops.values():
        subscribed(partner, WebhookEvent.REFERRAL_REWARDED, WebhookEvent.MEMBER_ERASED)
    webhook_subscribers()  # the process's copy of the subscriptions, as every later request finds it
    batch = [ReferralRewarded(member_id=member.pk, referral_id=n, referee_id=n) for n, member in enumerate(members)]
    batch += [MemberErased(member_id=member.pk) for member in members[:10]]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        announce(batch)  # the announcer alone (the apps' own subscribers to erasures do their work)
    statements = [query["sql"] for query in queries.captured_queries if "SAVEPOINT" not in query["sql"]]
    assert len(statements) == 2, statements
    assert statements[1].startswith('INSERT INTO "loyalty_site_webhookdelivery"')
    assert WebhookDelivery.objects.count() == 80  # 40 events × A and C


def test_nothing_is_read_or_written_while_nobody_subscribes(known, shops):
    subscribed(shops["A"], WebhookEvent.VOUCHER_USED)
    webhook_subscribers()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        announce([ReferralRewarded(member_id=known.pk, referral_id=1, referee_id=2),
                  MemberErased(member_id=known.pk)])
    assert [query["sql"] for query in queries.captured_queries if "SAVEPOINT" not in query["sql"]] == []
    assert not WebhookDelivery.objects.exists()


def test_a_change_that_rolls_back_announces_nothing(tiers, partner):
    subscribed(partner, WebhookEvent.MEMBER_ENROLLED)
    with pytest.raises(RuntimeError), transaction.atomic():
        member_enrol(email="zurueck@example.org", partner=partner)
        assert WebhookDelivery.objects.count() == 1  # recorded with the change...
        raise RuntimeError("the request failed after the enrolment")
    assert not WebhookDelivery.objects.exists()  # ...and gone with it
    assert not Member.objects.filter(email="zurueck@example.org").exists()


# --- Every enrolment path announces member.enrolled -----------------------------------------------

def test_an_api_enrolment_is_announced_to_the_enrolling_partner(api, partner, shops):
    subscribed(partner, WebhookEvent.MEMBER_ENROLLED)
    subscribed(shops["B"], WebhookEvent.MEMBER_ENROLLED)
    with capture() as events:
        body = api.post("/members/", {"email": "neu@example.org", "first_name": "Nina"}).json()
    assert [(event.name, event.via, event.partner_id) for event in events if isinstance(event, MemberEnrolled)] == [
        ("member.enrolled", "api", partner.pk)]
    member = Member.objects.get(public_id=body["id"])
    assert deliveries() == [(partner.name, "member.enrolled", {
        "member_id": body["id"], "via": "api",
        "member": {"id": body["id"], "customer_number": member.customer_number, "card_number": member.card_number},
    })]


def _sign_up_and_confirm(client, email: str, **extra) -> None:
    client.post(reverse("account_signup"), {"first_name": "Nora", "email": email,
                                            "password1": PASSWORD, "password2": PASSWORD, **extra})
    link = re.search(r"https?://[^/\s]+(/\S*confirm-email/\S+)", mail.outbox[-1].body).group(1)
    client.post(link)


def _enrolments(events) -> list[tuple[int, str]]:
    return [(event.member_id, event.via) for event in events if isinstance(event, MemberEnrolled)]


def test_a_portal_sign_up_is_announced_to_nobody_as_no_partner_knows_the_member(client, tiers, shops):
    subscribed(shops["A"], WebhookEvent.MEMBER_ENROLLED)
    with capture() as events:
        _sign_up_and_confirm(client, "portal@example.org")
    member = Member.objects.get(email="portal@example.org")
    assert _enrolments(events) == [(member.pk, "portal")]
    assert not WebhookDelivery.objects.exists()


def test_a_referral_sign_up_is_announced_as_a_portal_enrolment(client, tiers):
    factories.ReferralProgramFactory()
    anna = factories.enrolled_member(email="anna@example.org")
    with capture() as events:
        _sign_up_and_confirm(client, "dora@example.org", referral_code=factories.referral_code(anna))
    dora = Member.objects.get(email="dora@example.org")
    assert _enrolments(events) == [(dora.pk, "portal")]
    assert Referral.objects.get(referee=dora).referrer == anna


def test_staff_verifying_an_address_in_the_console_enrol_via_the_console(client, tiers):
    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    user = factories.UserFactory(email="kundin@example.org")
    address = EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    client.force_login(staff)
    with capture() as events:
        response = client.post(reverse("admin:account_emailaddress_changelist"),
                               {"action": "make_verified", "_selected_action": [address.pk]})
    assert response.status_code == 302
    member = Member.objects.get(user=user)
    assert _enrolments(events) == [(member.pk, "console")]


def test_an_import_announces_each_new_member_in_one_batch(tiers, shops):
    subscribed(shops["A"], WebhookEvent.MEMBER_ENROLLED)
    known = factories.enrolled_member(email="bekannt@example.org")
    with capture() as events:
        job = full_import(csv_bytes("E-mail,First name\nneu1@example.org,Eva\nneu2@example.org,Udo\n"
                                    f"{known.email},Bekannt\n"))
    assert job.status == "done", job.message
    new = dict(Member.objects.filter(email__startswith="neu").values_list("pk", "customer_number"))
    assert sorted(_enrolments(events)) == sorted((pk, "import") for pk in new)  # not the known member
    assert {event.customer_number for event in events if isinstance(event, MemberEnrolled)} == set(new.values())
    assert not WebhookDelivery.objects.exists()  # nobody knows them yet


# --- What partners can subscribe to ---------------------------------------------------------------

EVERY_EVENT = {"member.enrolled", "member.erased", "purchase.recorded", "points.earned", "points.spent",
               "points.expired", "tier.changed", "voucher.issued", "voucher.used", "referral.rewarded",
               "survey.answered", "complaint.closed"}


def test_partners_can_subscribe_to_every_announced_event():
    assert set(WebhookEvent.values) == EVERY_EVENT
    assert set(WebhookSubscriptionSerializer().fields["events"].child.choices) == EVERY_EVENT
    schema = Client(HTTP_HOST="localhost").get("/api/schema/", {"format": "json"}).json()
    assert set(schema["components"]["schemas"]["WebhookEventEnum"]["enum"]) == EVERY_EVENT


def test_a_voucher_code_goes_only_to_the_partner_that_issued_it():
    from rewards.events import VoucherIssued

    fields = {"member_id": 1, "redemption_id": 2, "reward_id": 3, "points": 100, "source": "catalogue",
              "code": "ABCD-EFGH-JKLM"}
    assert VoucherIssued(partner_id=7, **fields).data()["voucher"]["code"] == "ABCD-EFGH-JKLM"
    assert "code" not in VoucherIssued(**fields).data()["voucher"]  # portal: told to related partners


def test_answers_and_complaints_carry_no_free_text():
    answered = SurveyAnswered(member_id=1, survey_id=2, response_id=3, score=4).data()
    closed = ComplaintClosed(member_id=1, complaint_id=2, status="closed", category="service").data()
    assert set(answered) == {"survey_id", "response_id", "score"}
    assert set(closed) == {"complaint_id", "status", "category"}


# --- Points, tiers and vouchers: announced by the services' events, the API views emit nothing ------

def test_a_voucher_bought_through_the_api_goes_to_that_partner_with_its_code(api, partner, known, shops):
    subscribed(partner, WebhookEvent.VOUCHER_ISSUED, WebhookEvent.POINTS_SPENT)
    subscribed(shops["A"], WebhookEvent.VOUCHER_ISSUED, WebhookEvent.POINTS_SPENT)
    points_credit(member_id=known.pk, points=500, reason="Start")
    reward = factories.RewardFactory(points_cost=200)
    body = api.post("/redemptions/", {"card_number": known.card_number, "reward_id": reward.pk}).json()
    # Once each, to the till's partner only (A knows the member but did not sell the voucher).
    assert [(name, event) for name, event, _payload in deliveries()] == [
        (partner.name, "points.spent"), (partner.name, "voucher.issued")]
    assert deliveries()[1][2]["voucher"]["code"] == body["code"]


def test_a_portal_voucher_and_a_console_adjustment_go_to_the_related_partners_without_the_code(known, shops):
    from rewards.adjustments import points_adjust_by_staff
    from rewards.vouchers import redemption_create

    for partner in shops.values():
        subscribed(partner, WebhookEvent.VOUCHER_ISSUED, WebhookEvent.POINTS_EARNED)
    staff = factories.StaffUserFactory(is_superuser=True)
    points_adjust_by_staff(member_id=known.pk, points=300, reason="Kulanz", staff_user=staff)
    reward = factories.RewardFactory(points_cost=200)
    redemption = redemption_create(member_id=known.pk, reward_id=reward.pk)
    assert sorted((name, event) for name, event, _payload in deliveries()) == [
        ("A", "points.earned"), ("A", "voucher.issued"), ("C", "points.earned"), ("C", "voucher.issued")]
    voucher = next(payload for _name, event, payload in deliveries() if event == "voucher.issued")["voucher"]
    assert voucher == {"id": redemption.pk, "reward_id": reward.pk, "points": 200, "source": "catalogue"}
