"""How segment counts are planned (issue #24): the period aggregation streams over sorted rows,
and member lists are joined with the active members through the partial index `member_active`.
Sequential scans are switched off for the EXPLAIN, so the tiny test tables get the plans that
a million members would (the planner then scans a table whole only where no index answers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction

from campaigns.segments import Condition, compile_conditions
from members.models import Member
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def plan_nodes(queryset) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = json.loads(queryset.explain(format="json"))
    nodes = []

    def walk(node):
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return nodes


@pytest.fixture
def shoppers(tiers):
    partner = factories.PartnerFactory()
    members = [factories.enrolled_member() for _ in range(6)]
    for number, member in enumerate(members):
        for days in (3, 40, 100, 200):
            factories.PurchaseFactory(member=member, partner=partner, occurred_at=NOW - timedelta(days=days + number),
                                      amount=Decimal(20 + 10 * number))
    return members


def test_the_period_aggregation_groups_sorted_rows_instead_of_a_hash_table(shoppers):
    members = Member.objects.active().filter(
        compile_conditions([Condition("average_order", "gte", "60", days=180)], now=NOW))
    kinds = {(node["Node Type"], node.get("Strategy")) for node in plan_nodes(members)}
    assert ("Aggregate", "Sorted") in kinds
    assert ("Aggregate", "Hashed") not in kinds


def test_a_segment_joins_its_member_list_with_the_active_members_through_the_partial_index(shoppers):
    members = Member.objects.active().filter(
        compile_conditions([Condition("average_order", "gte", "60", days=180)], now=NOW)).order_by("pk")
    scans = [node for node in plan_nodes(members.values("pk")) if node.get("Relation Name") == "members_member"]
    assert [(node["Node Type"], node.get("Index Name")) for node in scans] == [("Index Only Scan", "member_active")]

