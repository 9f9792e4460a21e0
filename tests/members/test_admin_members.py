"""The operator console for members and the ledger: safe to click, fast, actions through services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from members.models import Member, TierHistory
from rewards.models import EarningRule, PointEntry, Purchase
from rewards.purchases import LineData, purchase_record
from tests import factories


@pytest.fixture
def superuser(db):
    return factories.UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def shopper(member, partner, base_rule):
    for index in range(3):
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"A-{index}", amount=Decimal("42.50"),
                        lines=[LineData(amount=Decimal("42.50"), category="Kaffee")])
    member.refresh_from_db()
    return member


def test_member_360_page_shows_balance_ledger_purchases_and_breakdown(staff_client, shopper):
    response = staff_client.get(reverse("admin:members_member_change", args=[shopper.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="ledger"' in page and 'data-testid="purchases"' in page
    assert "A-2" in page
    assert "1 Punkt pro Euro = +42" in page
    assert str(shopper.points_balance) in page


def test_member_360_page_query_count_does_not_grow_with_history(staff_client, shopper, partner):
    url = reverse("admin:members_member_change", args=[shopper.pk])
    with CaptureQueriesContext(connection) as few:
        staff_client.get(url)
    for index in range(10):
        purchase_record(member_id=shopper.pk, partner=partner, order_reference=f"B-{index}", amount=Decimal("9.99"))
    with CaptureQueriesContext(connection) as many:
        staff_client.get(url)
    assert len(many) <= len(few) + 2


def test_member_changelist_searches_and_filters(staff_client, shopper, tiers):
    url = reverse("admin:members_member_changelist")
    assert shopper.customer_number in staff_client.get(url, {"q": shopper.customer_number}).content.decode()
    assert shopper.customer_number in staff_client.get(url, {"q": shopper.last_name[:6]}).content.decode()
    assert shopper.customer_number in staff_client.get(url, {"q": shopper.card_number}).content.decode()
    response = staff_client.get(url, {"tier__id__exact": tiers[3].pk})
    assert response.status_code == 200
    assert shopper.customer_number not in response.content.decode()
    assert staff_client.get(url, {"email_consent": "yes"}).status_code == 200


def test_changelist_query_count_is_bounded(staff_client, tiers):
    url = reverse("admin:members_member_changelist")
    factories.enrolled_member()
    with CaptureQueriesContext(connection) as one:
        staff_client.get(url)
    for _ in range(20):
        factories.enrolled_member()
    with CaptureQueriesContext(connection) as many:
        staff_client.get(url)
    assert len(many) == len(one)


@pytest.mark.parametrize("params", [
    {}, {"o": "3"}, {"o": "-2.1"}, {"status__exact": "active"}, {"q": "Muster"}, {"country": "DE", "o": "6"},
])
def test_a_deep_page_shows_the_same_rows_when_it_loads_the_keys_first(staff_client, tiers, monkeypatch, params):
    from core import admin_utils
    from rewards.admin_members import MemberAdmin

    now = timezone.now()
    for index in range(14):
        member = factories.enrolled_member(last_name=f"Mustermann{index % 4}", country="DE" if index % 3 else "AT")
        Member.objects.filter(pk=member.pk).update(joined_at=now - timedelta(days=index % 5),  # ties on joined_at
                                                   points_balance=index % 3)
    Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)
    monkeypatch.setattr(MemberAdmin, "list_per_page", 3)
    url = reverse("admin:members_member_changelist")

    def pages(deferred_from: int) -> list[list[int]]:
        monkeypatch.setattr(admin_utils, "DEFERRED_OFFSET", deferred_from)
        result = []
        for number in range(1, 4):
            response = staff_client.get(url, {**params, "p": number})
            assert response.status_code == 200
            result.append([row.pk for row in response.context["cl"].result_list])
        return result

    plain = pages(10_000)
    with CaptureQueriesContext(connection) as captured:
        deferred = pages(3)
    assert deferred == plain and sum(map(len, plain)) > 3
    keys_only = [query["sql"] for query in captured if query["sql"].startswith(
        'SELECT "members_member"."id" AS "pk" FROM') and "OFFSET" in query["sql"]]
    assert keys_only, "the deep pages did not load their keys first"


def test_adjust_points_through_the_console_books_an_entry_with_reason(staff_client, shopper, superuser):
    before = shopper.points_balance
    url = reverse("admin:members_member_adjust_points", args=[shopper.pk])
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(url, {"points": "-10", "reason": "Kulanz rückgängig"})
    assert response.status_code == 302
    shopper.refresh_from_db()
    assert shopper.points_balance == before - 10
    entry = PointEntry.objects.filter(member=shopper).first()
    assert (entry.kind, entry.reason, entry.created_by) == (PointEntry.Kind.ADJUST, "Kulanz rückgängig", superuser)


def test_adjust_points_refuses_going_below_zero_and_changes_nothing(staff_client, shopper):
    url = reverse("admin:members_member_adjust_points", args=[shopper.pk])
    response = staff_client.post(url, {"points": str(-(shopper.points_balance + 1)), "reason": "zu viel"})
    assert response.status_code == 200
    assert "Not enough points" in response.content.decode() or "Nicht genug Punkte" in response.content.decode()
    assert PointEntry.objects.filter(member=shopper, kind=PointEntry.Kind.ADJUST).count() == 0


def test_adjust_points_needs_a_reason(staff_client, shopper):
    response = staff_client.post(reverse("admin:members_member_adjust_points", args=[shopper.pk]), {"points": "5"})
    assert response.status_code == 200
    assert PointEntry.objects.filter(member=shopper, kind=PointEntry.Kind.ADJUST).count() == 0


def test_override_tier_with_a_reason_is_recorded(staff_client, shopper, tiers, superuser):
    url = reverse("admin:members_member_override_tier", args=[shopper.pk])
    until = (timezone.localdate() + timedelta(days=90)).isoformat()
    response = staff_client.post(url, {"tier": tiers[3].pk, "reason": "VIP-Einladung", "until": until})
    assert response.status_code == 302
    shopper.refresh_from_db()
    assert shopper.tier == tiers[3]
    change = TierHistory.objects.filter(member=shopper).first()
    assert (change.cause, change.reason, change.created_by) == (TierHistory.Cause.GRANT, "VIP-Einladung", superuser)


def test_merge_from_the_console_moves_the_balance(staff_client, shopper, partner):
    duplicate = factories.enrolled_member()
    purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D-1", amount=Decimal("20"))
    duplicate.refresh_from_db()
    total = shopper.points_balance + duplicate.points_balance
    response = staff_client.post(reverse("admin:members_member_merge", args=[shopper.pk]),
                                 {"duplicate": duplicate.customer_number, "reason": "Doppelt angelegt"})
    assert response.status_code == 302
    shopper.refresh_from_db()
    duplicate.refresh_from_db()
    assert shopper.points_balance == total
    assert duplicate.status == Member.Status.MERGED and duplicate.merged_into == shopper
    assert Purchase.objects.get(order_reference="D-1").member == shopper
    page = staff_client.get(reverse("admin:members_member_change", args=[duplicate.pk])).content.decode()
    assert "merged into" in page or "zusammengeführt" in page


def test_block_and_unblock_actions(staff_client, shopper):
    staff_client.get(reverse("admin:members_member_block_action", args=[shopper.pk]))
    shopper.refresh_from_db()
    assert shopper.status == Member.Status.BLOCKED
    staff_client.get(reverse("admin:members_member_unblock_action", args=[shopper.pk]))
    shopper.refresh_from_db()
    assert shopper.status == Member.Status.ACTIVE


def test_staff_without_permission_cannot_adjust_points(client, shopper):
    clerk = factories.UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(clerk)
    assert client.get(reverse("admin:members_member_change", args=[shopper.pk])).status_code == 200
    response = client.post(reverse("admin:members_member_adjust_points", args=[shopper.pk]),
                           {"points": "1000", "reason": "selbst bedient"})
    assert response.status_code == 403
    assert not PointEntry.objects.filter(kind=PointEntry.Kind.ADJUST).exists()


def test_ledger_is_never_editable_or_deletable_in_the_admin(staff_client, shopper):
    entry = PointEntry.objects.filter(member=shopper).first()
    assert staff_client.get(reverse("admin:rewards_pointentry_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:rewards_pointentry_add")).status_code == 403
    assert staff_client.get(reverse("admin:rewards_pointentry_delete", args=[entry.pk])).status_code == 403
    page = staff_client.get(reverse("admin:rewards_pointentry_change", args=[entry.pk])).content.decode()
    assert 'name="points"' not in page  # read-only view, no input


def test_members_cannot_be_added_or_deleted_in_the_admin(staff_client, shopper):
    assert staff_client.get(reverse("admin:members_member_add")).status_code == 403
    assert staff_client.get(reverse("admin:members_member_delete", args=[shopper.pk])).status_code == 403


def test_earning_rule_page_shows_the_simulation(staff_client, shopper):
    rule = factories.EarningRuleFactory(name_de="Dreifach auf Kaffee", effect="multiplier", value=3, category="Kaffee",
                                        active=False)
    response = staff_client.get(reverse("admin:rewards_earningrule_change", args=[rule.pk]), {"simulate_days": 7})
    simulation = response.context["simulation"]
    assert simulation.purchases_seen == 3
    assert simulation.purchases_affected == 3
    assert simulation.members_affected == 1
    assert simulation.extra_points == 3 * 85  # 42.50 × (3 - 1) per purchase
    assert 'data-testid="simulation"' in response.content.decode()
    assert not EarningRule.objects.get(pk=rule.pk).active  # simulating never switches it on


def test_purchase_page_shows_breakdown_and_lines(staff_client, shopper):
    purchase = Purchase.objects.filter(member=shopper).first()
    page = staff_client.get(reverse("admin:rewards_purchase_change", args=[purchase.pk])).content.decode()
    assert "1 Punkt pro Euro" in page and "Kaffee" in page


def test_verify_ledger_passes_on_the_demo_data(db, capsys):
    call_command("seed_demo", members=5)
    call_command("verify_ledger")
    assert "ledger OK" in capsys.readouterr().out
    call_command("seed_demo", members=5)  # a second run adds nothing
    from referrals.demo import FRIENDS

    assert Member.objects.count() == 6 + len(FRIENDS)  # + the demo member's referred friends


def test_staff_changes_to_a_member_leave_an_audit_trail(staff_client, shopper, superuser):
    url = reverse("admin:members_member_change", args=[shopper.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(first_name="Erika-Maria", tags=[])
    response = staff_client.post(url, data, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    from auditlog.models import LogEntry

    entry = LogEntry.objects.get_for_object(shopper).latest("timestamp")
    assert entry.actor == superuser and entry.remote_addr == "10.1.2.3"
    assert entry.changes_dict["first_name"] == ["Erika", "Erika-Maria"]
    page = staff_client.get(url).content.decode()
    assert "Erika-Maria" in page and 'data-testid="audit"' in page

    from core.audit import erase_audit_trail_of

    assert erase_audit_trail_of(shopper) >= 1
    assert not LogEntry.objects.get_for_object(shopper).exists()
