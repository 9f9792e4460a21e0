"""Which members a partner's key reaches (issue #19): a member who is present (card number,
customer number, member code in the request) or related (enrolled or bought with the partner, at
the key's stores). Everything else answers 404, exactly like a member that does not exist.

The member here bought at the test partner's store S1. "foreign partner" is another partner's
key, "foreign store" a key of the same partner restricted to its store S2."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation

from feedback.models import Complaint
from feedback.models import Response as SurveyResponse
from members.merge import member_merge
from members.models import Member, MemberCode, PartnerRelation
from members.services import member_code_issue
from partners.models import Partner, PartnerAPIKey
from rewards.ledger import points_credit
from rewards.models import PointEntry, Purchase, Redemption
from tests import factories
from tests.api_support import purchase_body


@pytest.fixture
def customer(api, member):
    """Our customer: bought at store S1 through the API, so the partner is related to them there."""
    assert api.post("/purchases/", purchase_body(member, "BON-1", store="S1")).status_code == 201
    points_credit(member_id=member.pk, points=1000, reason="test")
    return member


@pytest.fixture
def foreign_store_api(api, partner):
    store = factories.StoreFactory(partner=partner, code="S2")
    key = factories.PartnerAPIKeyFactory(partner=partner, stores=[store])
    return api.with_key(key.raw_key, partner=partner)


@pytest.fixture(params=["foreign_partner", "foreign_store"])
def outsider(request, other_api, foreign_store_api):
    """A key that may not reach our customer by id, with the store code it acts for."""
    return (other_api, "F1") if request.param == "foreign_partner" else (foreign_store_api, "S2")


@pytest.fixture
def survey(db):
    return factories.SurveyFactory(reward_points=25)


def _member_requests(member, store: str, survey) -> list[tuple[str, str, dict | None]]:
    """Every request that names a member by id: (method, path, body or query)."""
    member_id = str(member.public_id)
    code = factories.referral_code(factories.enrolled_member())
    return [
        ("GET", f"/members/{member_id}/", None),
        ("PATCH", f"/members/{member_id}/", {"city": "Bonn"}),
        ("GET", f"/members/{member_id}/balance/", None),
        ("GET", f"/members/{member_id}/entries/", None),
        ("GET", f"/members/{member_id}/referrals/", None),
        ("GET", f"/members/{member_id}/referrals/code/", None),
        ("POST", f"/members/{member_id}/referrals/", {"code": code}),
        ("POST", "/purchases/", {"member_id": member_id, "order_reference": "X-1", "amount": "10.00",
                                 "currency": "EUR", "store": store}),
        ("POST", "/complaints/", {"member_id": member_id, "category": "other", "subject": "x", "description": "y",
                                  "store": store}),
        ("POST", "/survey-responses/", {"member_id": member_id, "survey_id": survey.pk, "score": 9,
                                        "store": store}),
        ("GET", "/rewards/", {"member_id": member_id}),
    ]


def _send(api, method: str, path: str, data: dict | None):
    if method == "GET":
        return api.get(path, params=data)
    return api.request(method, path, json=data or {})


def test_every_member_endpoint_is_a_404_for_a_foreign_partner_or_store(customer, outsider, survey, tiers):
    factories.ReferralProgramFactory()
    client, store = outsider
    before = Member.objects.values_list("city", flat=True).get(pk=customer.pk)
    for method, path, data in _member_requests(customer, store, survey):
        response = _send(client, method, path, data)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "not_found"
    assert Member.objects.values_list("city", flat=True).get(pk=customer.pk) == before
    assert Purchase.objects.filter(member=customer).count() == 1
    assert not Complaint.objects.exists() and not SurveyResponse.objects.exists()
    # An e-mail finds only members the partner knows: nothing to learn from it either.
    assert client.get("/members/", params={"email": customer.email}).json()["results"] == []


def test_the_partner_who_knows_the_member_reaches_every_endpoint(api, customer, survey, tiers):
    factories.ReferralProgramFactory()
    for method, path, data in _member_requests(customer, "S1", survey):
        response = _send(api, method, path, data)
        assert response.status_code in (200, 201), (method, path, response.text)
    assert [row["id"] for row in api.get("/members/", params={"email": customer.email}).json()["results"]] == [
        str(customer.public_id)]


def test_a_missing_member_and_a_foreign_one_get_the_same_answer(customer, other_api):
    foreign = other_api.get(f"/members/{customer.public_id}/")
    missing = other_api.get(f"/members/{uuid.uuid4()}/")
    assert (foreign.status_code, foreign.json()) == (missing.status_code, missing.json())


def test_counting_through_integer_ids_reaches_nobody(customer, other_api):
    """The finding: any key read /members/1/, /members/2/ … and changed or spent what it found."""
    for member_id in range(1, customer.pk + 1):
        assert other_api.get(f"/members/{member_id}/").status_code == 404
        assert other_api.patch(f"/members/{member_id}/", {"city": "Bonn"}).status_code == 404
    reward = factories.RewardFactory(points_cost=100)
    spend = other_api.post("/redemptions/", {"member_id": customer.pk, "reward_id": reward.pk, "store": "F1"})
    assert spend.status_code == 400
    customer.refresh_from_db()
    assert customer.points_balance == 1000 + 42 and customer.city != "Bonn"
    assert not Redemption.objects.exists()


def test_member_ids_in_answers_are_opaque_and_not_the_database_key(api, customer):
    enrolled = api.post("/members/", {"email": "neu@example.org"}).json()
    member = Member.objects.get(email="neu@example.org")
    assert enrolled["id"] == str(member.public_id) and enrolled["id"] != str(member.pk)
    assert uuid.UUID(enrolled["id"]).version == 4
    purchase = api.post("/purchases/", purchase_body(customer, "BON-2", store="S1")).json()
    assert purchase["member_id"] == str(customer.public_id)
    voucher = api.post("/redemptions/", {"card_number": customer.card_number,
                                         "reward_id": factories.RewardFactory(points_cost=10).pk}).json()
    assert voucher["member_id"] == str(customer.public_id)
    assert api.get("/redemptions/").json()["results"][0]["member_id"] == str(customer.public_id)


def test_presence_reaches_any_member_and_a_purchase_relates_them(customer, other_api):
    assert other_api.get(f"/members/{customer.public_id}/balance/").status_code == 404
    # Present at the other partner's till: the scanned card (or the customer number) reaches them.
    found = other_api.get("/members/", params={"card_number": customer.card_number}).json()["results"]
    assert [row["id"] for row in found] == [str(customer.public_id)]
    balance = other_api.get(f"/members/{customer.public_id}/balance/",
                            params={"customer_number": customer.customer_number})
    assert balance.status_code == 200 and balance.json()["available"] == 1042
    # Presence of someone else does not open this member.
    someone = factories.enrolled_member()
    assert other_api.get(f"/members/{customer.public_id}/",
                         params={"card_number": someone.card_number}).status_code == 404
    # A purchase with the card relates the member to the other partner: the id reaches them from then on.
    assert other_api.post("/purchases/", purchase_body(customer, "F-1", store="F1")).status_code == 201
    assert other_api.get(f"/members/{customer.public_id}/balance/").status_code == 200
    assert PartnerRelation.objects.filter(member=customer, partner=other_api.partner, via="purchase").exists()


def test_a_member_code_from_the_portal_proves_presence_until_it_expires(customer, other_api):
    _row, code = member_code_issue(member_id=customer.pk)
    typed = f"{code[:5].lower()} {code[5:]}"
    found = other_api.get("/members/", params={"member_code": typed}).json()["results"]
    assert [row["id"] for row in found] == [str(customer.public_id)]
    reward = factories.RewardFactory(points_cost=100)
    spent = other_api.post("/redemptions/", {"member_code": code, "reward_id": reward.pk, "store": "F1"})
    assert spent.status_code == 201, spent.text
    # A new code replaces the old one; an expired code is refused like an unknown one.
    _row, newer = member_code_issue(member_id=customer.pk)
    assert other_api.get("/members/", params={"member_code": code}).json()["results"] == []
    MemberCode.objects.filter(member=customer).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert other_api.get("/members/", params={"member_code": newer}).json()["results"] == []
    refused = other_api.post("/redemptions/", {"member_code": newer, "reward_id": reward.pk, "store": "F1"})
    assert refused.status_code == 400 and "member_code" in refused.json()["errors"]


def test_member_codes_are_unguessable_and_only_their_hash_is_stored(customer):
    codes = {member_code_issue(member_id=customer.pk)[1] for _ in range(50)}
    assert len(codes) == 50 and all(len(code) == 10 for code in codes)
    stored = MemberCode.objects.get(member=customer)
    assert stored.code_hash not in codes and len(stored.code_hash) == 64
    assert stored.purpose == MemberCode.Purpose.PRESENCE


def test_spending_points_needs_presence_never_an_id(api, customer):
    reward = factories.RewardFactory(points_cost=100)
    by_id = api.post("/redemptions/", {"member_id": str(customer.public_id), "reward_id": reward.pk})
    assert by_id.status_code == 400 and "member_id" in by_id.json()["errors"]
    assert not Redemption.objects.exists()
    for presence in ({"card_number": customer.card_number}, {"customer_number": customer.customer_number}):
        assert api.post("/redemptions/", {**presence, "reward_id": reward.pk}).status_code == 201


def test_a_store_restricted_key_is_restricted_for_vouchers_and_redemptions(api, customer, foreign_store_api):
    reward = factories.RewardFactory(points_cost=100)
    at_s1 = api.post("/redemptions/", {"card_number": customer.card_number, "reward_id": reward.pk,
                                       "store": "S1"}).json()
    # Redeeming: the restricted key must name its store, and sees only vouchers issued there.
    unnamed = foreign_store_api.post("/redemptions/", {"card_number": customer.card_number, "reward_id": reward.pk})
    assert unnamed.status_code == 400 and "store" in unnamed.json()["errors"]
    not_its = foreign_store_api.post("/redemptions/", {"card_number": customer.card_number,
                                                       "reward_id": reward.pk, "store": "S1"})
    assert not_its.status_code == 400 and "store" in not_its.json()["errors"]
    at_s2 = foreign_store_api.post("/redemptions/", {"card_number": customer.card_number, "reward_id": reward.pk,
                                                     "store": "S2"})
    assert at_s2.status_code == 201, at_s2.text
    assert [row["id"] for row in foreign_store_api.get("/redemptions/").json()["results"]] == [at_s2.json()["id"]]
    assert foreign_store_api.get(f"/redemptions/{at_s1['id']}/").status_code == 404
    assert foreign_store_api.post(f"/redemptions/{at_s1['id']}/cancel/").status_code == 404
    assert {row["id"] for row in api.get("/redemptions/").json()["results"]} == {at_s1["id"], at_s2.json()["id"]}
    # Vouchers at the till: only for its own store.
    for body in ({"code": at_s1["code"]}, {"code": at_s1["code"], "store": "S1"}):
        for action in ("validate", "consume"):
            refused = foreign_store_api.post(f"/vouchers/{action}/", body)
            assert refused.status_code == 400 and "store" in refused.json()["errors"], (action, body)
    assert foreign_store_api.post("/vouchers/consume/", {"code": at_s1["code"], "store": "S2"}).status_code == 200


def test_a_store_restricted_key_reads_only_its_stores_complaints_and_answers_for_them(api, customer,
                                                                                     foreign_store_api, survey):
    complaint = {"card_number": customer.card_number, "category": "other", "subject": "x", "description": "y"}
    at_s1 = api.post("/complaints/", {**complaint, "store": "S1"}).json()
    unnamed = foreign_store_api.post("/complaints/", complaint)
    assert unnamed.status_code == 400 and "store" in unnamed.json()["errors"]
    at_s2 = foreign_store_api.post("/complaints/", {**complaint, "store": "S2"}).json()
    assert [row["id"] for row in foreign_store_api.get("/complaints/").json()["results"]] == [at_s2["id"]]
    assert foreign_store_api.get(f"/complaints/{at_s1['id']}/").status_code == 404
    assert {row["id"] for row in api.get("/complaints/").json()["results"]} == {at_s1["id"], at_s2["id"]}
    answer = {"survey_id": survey.pk, "score": 9, "card_number": customer.card_number}
    assert foreign_store_api.post("/survey-responses/", answer).status_code == 400
    assert foreign_store_api.post("/survey-responses/", {**answer, "store": "S1"}).status_code == 400
    assert foreign_store_api.post("/survey-responses/", {**answer, "store": "S2"}).status_code == 201


def test_a_store_restricted_key_reaches_members_related_at_its_stores(api, partner, member, foreign_store_api):
    assert foreign_store_api.post("/members/", {"email": "s2@example.org"}).status_code == 400  # name the store
    enrolled = foreign_store_api.post("/members/", {"email": "s2@example.org", "store": "S2"}).json()
    assert foreign_store_api.get(f"/members/{enrolled['id']}/").status_code == 200
    factories.relate(member, partner)  # known to the partner, but not at S2
    assert api.get(f"/members/{member.public_id}/").status_code == 200
    assert foreign_store_api.get(f"/members/{member.public_id}/").status_code == 404


def test_a_merge_keeps_the_partners_relation_with_the_person(api, partner, customer, tiers):
    survivor = factories.enrolled_member()
    member_merge(survivor_id=survivor.pk, duplicate_id=customer.pk)
    assert api.get(f"/members/{survivor.public_id}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_create_partner_key_with_an_unknown_scope_creates_nothing_and_exits_non_zero():
    """As a set-up script runs it: a process of its own, against the test database."""
    from django.db import connection

    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    result = subprocess.run(
        [sys.executable, "manage.py", "create_partner_key", "X GmbH", "--scopes", "members:read,everything"],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.test"})
    assert result.returncode != 0
    assert "Unknown scopes: everything" in result.stderr and not result.stdout
    assert not Partner.objects.filter(name="X GmbH").exists()
    assert not PartnerAPIKey.objects.exists()


def test_create_partner_key_with_an_unknown_store_creates_nothing(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Unknown store codes"):
        call_command("create_partner_key", "Y GmbH", "--stores", "NOPE", stdout=StringIO(), stderr=StringIO())
    assert not Partner.objects.filter(name="Y GmbH").exists()


def test_the_portal_card_page_shows_a_short_lived_member_code(client, api, tiers, settings):
    settings.LOYALTY_MEMBER_CODE_MINUTES = 5
    user = factories.UserFactory(email="karte@example.org")
    from allauth.account.models import EmailAddress

    from members.services import member_link_or_enrol

    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    client.force_login(user)
    with translation.override("en"):
        card, issue = reverse("portal:card"), reverse("portal:member_code")
    assert 'data-testid="member-code"' not in client.get(card).content.decode()
    assert client.get(issue).status_code == 405  # a code is made by a POST only
    assert client.post(issue).status_code == 302
    html = client.get(card).content.decode()
    shown = html.split('data-testid="member-code">', 1)[1].split("<", 1)[0]
    assert len(shown) == 11 and shown[5] == "-" and "<svg" in html
    row = MemberCode.objects.get(member=member)
    assert timedelta(minutes=4) < row.expires_at - timezone.now() <= timedelta(minutes=5)
    found = api.get("/members/", params={"member_code": shown}).json()["results"]
    assert [result["id"] for result in found] == [str(member.public_id)]


def test_the_relation_check_keeps_the_earn_and_balance_queries(api, member):
    """The first purchase at a store writes the relation; later ones and the balance read pay nothing for it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.rewards.test_hot_path_queries import BALANCE_READ, PURCHASE_EARN

    api.post("/purchases/", purchase_body(member, "WARM-UP"))
    assert PartnerRelation.objects.filter(member=member).count() == 1
    with CaptureQueriesContext(connection) as earn:
        assert api.post("/purchases/", purchase_body(member, "Q-1")).status_code == 201
    with CaptureQueriesContext(connection) as balance:
        assert api.get(f"/members/{member.public_id}/balance/").status_code == 200
    assert len(earn) <= PURCHASE_EARN and len(balance) <= BALANCE_READ
    assert not [query for query in earn.captured_queries if "INSERT INTO \"members_partnerrelation\"" in query["sql"]]
    assert PointEntry.objects.filter(member=member).count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_members_an_api_id_and_relates_them_to_their_partners():
    from decimal import Decimal

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    # Every app as it was before members 0016 (apps whose later migrations build on it step back too:
    # rewards 0011 moves Partner out after members 0018 re-points its foreign keys).
    later = set(executor.loader.graph.backwards_plan(("members", "0016_partner_scope")))
    # An app born after members 0016 (offers) has no node before it: migrating members back unapplies
    # it all by itself.
    earlier = {app: [node for node in executor.loader.graph.nodes if node[0] == app and node not in later]
               for app in {app for app, _name in latest}}
    before = [max(nodes) for nodes in earlier.values() if nodes]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        partner = old.get_model("rewards", "Partner").objects.create(name="Altkunde GmbH")
        store = old.get_model("rewards", "Store").objects.create(partner=partner, code="A1", name="Altstadt")
        OldMember = old.get_model("members", "Member")
        buyer, idle = (OldMember.objects.create(email=f"alt{n}@example.org", customer_number=f"K00000000{n}",
                                                card_number=f"927600000000000{n}") for n in (1, 2))
        for n in range(2):
            old.get_model("rewards", "Purchase").objects.create(
                member=buyer, partner=partner, store=store, order_reference=f"ALT-{n}", amount=Decimal("10"),
                occurred_at=timezone.now())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)  # whatever happened: the schema the other tests expect

    ids = dict(Member.objects.values_list("pk", "public_id"))
    assert ids[buyer.pk] and ids[idle.pk] and ids[buyer.pk] != ids[idle.pk]
    assert list(PartnerRelation.objects.values_list("member_id", "partner_id", "store_id", "via")) == [
        (buyer.pk, partner.pk, store.pk, "purchase")]
