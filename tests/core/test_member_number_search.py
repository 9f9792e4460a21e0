"""Console search by customer or card number (issue #24): every member-related changelist finds a
member's rows by either number through the unique indexes, still finds an order reference (or
ledger reference) shaped like a customer number, and plans no full scan of the big table."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.urls import reverse

from members.models import Member
from referrals import services as referral_services
from referrals.models import ReferralProgram
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, tiers):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def anna(tiers):
    return factories.MemberFactory(customer_number="K100200300", card_number="9276000011112222")


@pytest.fixture
def other(tiers):
    return factories.MemberFactory(customer_number="K900800700", card_number="9276999988887777")


def ledger_row(member):
    return factories.PointEntryFactory(member=member)


def purchase_row(member):
    return factories.PurchaseFactory(member=member)


def referral_row(member):
    if not ReferralProgram.objects.filter(active=True).exists():
        factories.ReferralProgramFactory()
    referee = factories.enrolled_member()
    return referral_services.referral_attach(referee_id=referee.pk, code=factories.referral_code(member),
                                             channel="api")


def answer_row(member):
    return factories.ResponseFactory(member=member)


def complaint_row(member):
    return factories.ComplaintFactory(member=member)


def consent_row(member):
    return factories.ConsentRecordFactory(member=member)


def tier_history_row(member):
    return factories.TierHistoryFactory(member=member)


def return_row(member):
    return factories.PurchaseReturnFactory(purchase=factories.PurchaseFactory(member=member))


def message_row(member):
    return factories.MessageFactory(member=member)


def stamp_card_row(member):
    return factories.StampCardFactory(member=member)


# (changelist, the big table under it, a function making one row of a member there)
PAGES = [
    ("rewards_pointentry", "rewards_pointentry", ledger_row),
    ("rewards_purchase", "rewards_purchase", purchase_row),
    ("referrals_referral", "referrals_referral", referral_row),
    ("feedback_response", "feedback_response", answer_row),
    ("feedback_complaint", "feedback_complaint", complaint_row),
    ("members_consentrecord", "members_consentrecord", consent_row),
    ("members_tierhistory", "members_tierhistory", tier_history_row),
    ("rewards_purchasereturn", "rewards_purchasereturn", return_row),
    ("campaigns_message", "campaigns_message", message_row),
    ("rewards_stampcard", "rewards_stampcard", stamp_card_row),
]


def changelist(client, name: str, search: str):
    response = client.get(reverse(f"admin:{name}_changelist"), {"q": search})
    assert response.status_code == 200
    return response.context["cl"]


def found(client, name: str, search: str) -> set[int]:
    return {row.pk for row in changelist(client, name, search).result_list}


def full_scans(queryset, table: str) -> list[str]:
    """The plan's scans of `table` that read it whole: a Seq Scan, or an index scan without a
    condition (walking an index for its order). Sequential scans are switched off for the
    EXPLAIN, so a tiny test table still gets the plan a big one would: the planner takes a
    sequential scan then only where no index can answer the condition."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = json.loads(queryset[:100].explain(format="json"))
    scans = []

    def reads_whole(node) -> bool:
        kind = node["Node Type"]
        return kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node)

    def walk(node):
        if node.get("Relation Name") == table and reads_whole(node):
            scans.append(f"{node['Node Type']} on {table}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return scans


@pytest.mark.parametrize(("name", "table", "make_row"), PAGES)
def test_a_customer_number_finds_the_members_rows_on_each_page(staff_client, anna, other, name, table, make_row):
    mine, theirs = make_row(anna), make_row(other)
    assert found(staff_client, name, "K100200300") == {mine.pk}
    assert found(staff_client, name, "k100200300") == {mine.pk}  # typed in small letters
    assert theirs.pk in found(staff_client, name, "K900800700")


@pytest.mark.parametrize(("name", "table", "make_row"), PAGES)
def test_a_card_number_finds_the_members_rows_on_each_page(staff_client, anna, other, name, table, make_row):
    mine, _theirs = make_row(anna), make_row(other)
    assert found(staff_client, name, "9276000011112222") == {mine.pk}
    assert found(staff_client, name, "9276 0000 1111 2222") == {mine.pk}  # as printed on the card


@pytest.mark.parametrize(("name", "table", "make_row"), PAGES)
def test_a_number_search_reads_no_page_table_whole(staff_client, anna, other, name, table, make_row):
    make_row(anna)
    make_row(other)
    for term in ("K100200300", "9276000011112222"):
        cl = changelist(staff_client, name, term)
        assert full_scans(cl.queryset, table) == [], (name, term)


def test_an_unknown_number_finds_nothing(staff_client, anna):
    ledger_row(anna)
    assert found(staff_client, "rewards_pointentry", "K555555555") == set()


def test_an_order_reference_shaped_like_a_customer_number_is_still_found(staff_client, anna, other):
    mine = factories.PurchaseFactory(member=anna)
    lookalike = factories.PurchaseFactory(member=other, order_reference="K100200300")
    assert found(staff_client, "rewards_purchase", "K100200300") == {mine.pk, lookalike.pk}
    assert found(staff_client, "rewards_purchase", "k100200300") == {mine.pk, lookalike.pk}
    cl = changelist(staff_client, "rewards_purchase", "K100200300")
    assert full_scans(cl.queryset, "rewards_purchase") == []


def test_an_order_reference_is_found_through_its_index(staff_client, anna):
    purchase = factories.PurchaseFactory(member=anna, order_reference="WEB-2026-0042")
    assert found(staff_client, "rewards_purchase", "WEB-2026-0042") == {purchase.pk}
    assert found(staff_client, "rewards_purchase", "web-2026-0042") == {purchase.pk}
    cl = changelist(staff_client, "rewards_purchase", "WEB-2026-0042")
    assert full_scans(cl.queryset, "rewards_purchase") == []


def test_a_ledger_reference_shaped_like_a_customer_number_is_still_found(staff_client, anna, other):
    mine = ledger_row(anna)
    lookalike = factories.PointEntryFactory(member=other, source="api", reference="K100200300")
    assert found(staff_client, "rewards_pointentry", "K100200300") == {mine.pk, lookalike.pk}
    cl = changelist(staff_client, "rewards_pointentry", "K100200300")
    assert full_scans(cl.queryset, "rewards_pointentry") == []


def test_a_return_is_found_by_its_purchases_order_reference(staff_client, anna):
    returned = factories.PurchaseReturnFactory(purchase=factories.PurchaseFactory(member=anna,
                                                                                  order_reference="K700000001"))
    assert found(staff_client, "rewards_purchasereturn", "K700000001") == {returned.pk}


def test_a_referral_is_found_by_the_code_used(staff_client, anna):
    referral = referral_row(anna)
    assert found(staff_client, "referrals_referral", referral.code) == {referral.pk}
    assert found(staff_client, "referrals_referral", referral.code.lower()) == {referral.pk}


def test_a_complaint_is_found_by_its_number(staff_client, anna):
    complaint = complaint_row(anna)
    assert found(staff_client, "feedback_complaint", str(complaint.pk)) == {complaint.pk}


def test_a_number_too_long_for_a_complaint_number_finds_nothing_and_fails_nothing(staff_client, anna):
    complaint_row(anna)
    assert found(staff_client, "feedback_complaint", "9" * 20) == set()


def test_other_terms_keep_the_fragment_search(staff_client, anna):
    answer = factories.ResponseFactory(member=anna, comment="Der Kaffee war hervorragend")
    factories.ResponseFactory(member=anna, comment="")
    assert found(staff_client, "feedback_response", "hervorragend") == {answer.pk}
    consent = consent_row(Member.objects.get(pk=anna.pk))
    assert found(staff_client, "members_consentrecord", anna.email[:6]) == {consent.pk}


def test_the_search_adds_no_distinct(staff_client, anna):
    ledger_row(anna)
    cl = changelist(staff_client, "rewards_pointentry", "K100200300")
    assert not cl.queryset.query.distinct
    where = str(cl.queryset.query).split(" WHERE ", 1)[1]
    assert "members_member" not in where  # the member was looked up first; joined only for the display
