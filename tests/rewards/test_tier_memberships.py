"""Paid (VIP) and invitation tiers: the member holds the highest of their points tier and any
active membership; a membership's end (or its returned fee) falls back to the points tier; a
renewal extends from the old end; the fee is a purchase that earns nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ReasonRequired, ReferenceConflict
from core.events import capture
from members.models import Tier, TierHistory
from rewards.errors import InvalidMembership, InvalidReturn, MembershipTierNotOverridable
from rewards.events import TierChanged
from rewards.models import Channel, PointEntry, Purchase, TierMembership
from rewards.purchases import purchase_record
from rewards.returns import purchase_return
from rewards.tier_memberships import (
    membership_ends,
    tier_membership_invite,
    tier_membership_sell,
    tier_memberships_end_due,
)
from rewards.tiers import tier_end_grants, tier_override, tier_review_member
from tests import factories
from tests.rewards.test_ledger_verify import verify_ledger


@pytest.fixture
def vip(tiers):
    return factories.vip_tier()


@pytest.fixture
def ambassador(tiers):
    return factories.invitation_tier()


def sell(member, partner, vip, reference="VIP-1", **kwargs):
    return tier_membership_sell(member_id=member.pk, tier=vip, partner=partner, order_reference=reference, **kwargs)


def earn(member, partner, amount, reference):
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=Decimal(amount))


def test_selling_a_paid_membership_lifts_the_member_to_the_paid_tier(member, partner, vip, base_rule):
    sale = sell(member, partner, vip)
    member.refresh_from_db()
    assert sale.created and member.tier == vip
    today = timezone.localdate()
    assert (sale.membership.starts, sale.membership.ends) == (today, membership_ends(today, 12))
    change = member.tier_history.first()
    assert (change.cause, change.to_tier) == (TierHistory.Cause.PAID, vip)


def test_the_fee_is_a_purchase_that_earns_no_points(member, partner, vip, base_rule):
    factories.StampCardProgramFactory()
    sale = sell(member, partner, vip)
    purchase = sale.membership.fee_purchase
    assert (purchase.channel, purchase.amount, purchase.currency) == (Channel.MEMBERSHIP, Decimal("99.00"), "EUR")
    assert purchase.points_earned == 0 and not purchase.breakdown.exists()
    member.refresh_from_db()
    assert (member.points_balance, member.points_pending, member.lifetime_spend) == (0, 0, Decimal("99.00"))
    assert Purchase.objects.filter(member=member).get() == purchase  # in the member's purchases
    assert not PointEntry.objects.filter(member=member).exists()
    assert verify_ledger() == 0


def test_the_same_order_reference_sells_only_once(member, partner, vip):
    first = sell(member, partner, vip)
    again = sell(member, partner, vip)
    assert (again.created, again.membership) == (False, first.membership)
    assert TierMembership.objects.count() == 1 and Purchase.objects.count() == 1


def test_an_order_reference_of_an_ordinary_purchase_is_a_conflict(member, partner, vip):
    earn(member, partner, "20", "ORD-1")
    with pytest.raises(ReferenceConflict):
        sell(member, partner, vip, reference="ORD-1")


def test_a_renewal_extends_from_the_old_end(member, partner, vip):
    first = sell(member, partner, vip).membership
    renewal = sell(member, partner, vip, reference="VIP-2").membership
    assert renewal.starts == first.ends + timedelta(days=1)
    assert renewal.ends == membership_ends(renewal.starts, 12)
    # The first year ends: the renewal carries on without a tier change.
    assert tier_memberships_end_due(today=first.ends + timedelta(days=1)) == 1
    member.refresh_from_db()
    assert member.tier == vip
    assert not member.tier_history.filter(cause=TierHistory.Cause.MEMBERSHIP_ENDED).exists()


def test_the_end_of_the_membership_falls_back_to_the_points_tier(member, partner, vip, tiers, base_rule):
    membership = sell(member, partner, vip).membership
    earn(member, partner, "2100", "BIG")  # Gold on points, while VIP
    member.refresh_from_db()
    assert member.tier == vip
    # A short membership, so the points are still within the tier window at its end.
    TierMembership.objects.filter(pk=membership.pk).update(ends=timezone.localdate() + timedelta(days=10))
    membership.refresh_from_db()
    assert tier_memberships_end_due(today=membership.ends) == 0  # the last day still counts
    with capture() as events:
        assert tier_memberships_end_due(today=membership.ends + timedelta(days=1)) == 1
    member.refresh_from_db()
    membership.refresh_from_db()
    assert (member.tier, membership.status) == (tiers[2], TierMembership.Status.ENDED)
    change = member.tier_history.first()
    assert (change.cause, change.from_tier, change.to_tier) == (TierHistory.Cause.MEMBERSHIP_ENDED, vip, tiers[2])
    assert [(event.cause, event.to_tier_id) for event in events if isinstance(event, TierChanged)] == [
        ("membership_ended", tiers[2].pk)]


def test_the_fall_back_keeps_the_tier_held_before_the_membership(member, vip, tiers, partner):
    tier_override(member_id=member.pk, tier=tiers[3], reason="Platin im Vorjahr", staff_user=None)
    membership = sell(member, partner, vip).membership
    tier_memberships_end_due(today=membership.ends + timedelta(days=1))
    member.refresh_from_db()
    assert member.tier == tiers[3]


def test_a_membership_below_the_points_tier_changes_nothing(member, ambassador, tiers):
    diamond = factories.TierFactory(rank=20, name_de="Diamant", threshold_points=50_000)
    tier_override(member_id=member.pk, tier=diamond, reason="Diamant", staff_user=None)
    before = member.tier_history.count()
    tier_membership_invite(member_id=member.pk, tier=ambassador, ends=timezone.localdate() + timedelta(days=30),
                           reason="Pressekontakt", staff_user=None)
    member.refresh_from_db()
    assert member.tier == diamond and member.tier_history.count() == before


def test_an_invitation_grants_its_tier_until_its_end_date(member, ambassador, tiers):
    staff = factories.StaffUserFactory()
    ends = timezone.localdate() + timedelta(days=90)
    membership = tier_membership_invite(member_id=member.pk, tier=ambassador, ends=ends, reason="Influencerin",
                                        staff_user=staff)
    member.refresh_from_db()
    assert (member.tier, membership.invited_by, membership.source) == (ambassador, staff, "invitation")
    change = member.tier_history.first()
    assert (change.cause, change.reason, change.created_by) == (TierHistory.Cause.INVITATION, "Influencerin", staff)
    tier_memberships_end_due(today=ends + timedelta(days=1))
    member.refresh_from_db()
    assert member.tier == tiers[0]


def test_the_highest_active_membership_wins_and_the_other_remains(member, partner, vip, ambassador, tiers):
    ends = timezone.localdate() + timedelta(days=10)
    tier_membership_invite(member_id=member.pk, tier=ambassador, ends=ends, reason="Jubiläum", staff_user=None)
    vip_membership = sell(member, partner, vip).membership
    member.refresh_from_db()
    assert member.tier == vip  # rank 10 over 9
    TierMembership.objects.filter(pk=vip_membership.pk).update(ends=ends - timedelta(days=5))
    tier_memberships_end_due(today=ends - timedelta(days=4))
    member.refresh_from_db()
    assert member.tier == ambassador
    tier_memberships_end_due(today=ends + timedelta(days=1))
    member.refresh_from_db()
    assert member.tier == tiers[0]


def test_a_returned_fee_within_the_window_ends_the_membership(member, partner, vip, tiers):
    membership = sell(member, partner, vip).membership
    purchase_return(purchase_id=membership.fee_purchase_id, reference="CN-VIP", amount=Decimal("99.00"))
    member.refresh_from_db()
    membership.refresh_from_db()
    assert (member.tier, membership.status) == (tiers[0], TierMembership.Status.RETURNED)
    assert member.tier_history.first().cause == TierHistory.Cause.MEMBERSHIP_ENDED
    assert member.lifetime_spend == Decimal("0")
    assert verify_ledger() == 0


def test_a_fee_is_not_returnable_after_the_window(member, partner, vip, settings):
    settings.LOYALTY_MEMBERSHIP_RETURN_DAYS = 14
    membership = sell(member, partner, vip, occurred_at=timezone.now() - timedelta(days=20)).membership
    with pytest.raises(InvalidReturn):
        purchase_return(purchase_id=membership.fee_purchase_id, reference="CN-LATE", amount=Decimal("99.00"))
    membership.refresh_from_db()
    assert membership.status == TierMembership.Status.ACTIVE
    assert not membership.fee_purchase.returns.exists()


def test_the_yearly_review_leaves_a_membership_tier_alone(member, partner, vip):
    sell(member, partner, vip)
    tier_review_member(member_id=member.pk)
    member.refresh_from_db()
    assert member.tier == vip


def test_points_never_reach_a_paid_tier(member, partner, vip, tiers, base_rule):
    earn(member, partner, "9000", "HUGE")
    member.refresh_from_db()
    assert member.tier == tiers[3]


def test_a_paid_or_invitation_tier_is_no_override(member, vip, ambassador):
    for tier in (vip, ambassador):
        with pytest.raises(MembershipTierNotOverridable):
            tier_override(member_id=member.pk, tier=tier, reason="VIP", staff_user=None)


def test_bad_sales_and_invitations_change_nothing(member, partner, vip, ambassador, tiers):
    with pytest.raises(InvalidMembership):
        sell(member, partner, ambassador)
    with pytest.raises(InvalidMembership):
        tier_membership_invite(member_id=member.pk, tier=vip, ends=date.today() + timedelta(days=9), reason="x",
                               staff_user=None)
    with pytest.raises(InvalidMembership):
        tier_membership_invite(member_id=member.pk, tier=ambassador, ends=timezone.localdate(), reason="x",
                               staff_user=None)
    with pytest.raises(ReasonRequired):
        tier_membership_invite(member_id=member.pk, tier=ambassador, ends=date.today() + timedelta(days=9),
                               reason=" ", staff_user=None)
    assert not TierMembership.objects.exists() and not Purchase.objects.exists()


def test_a_grant_ending_under_a_membership_keeps_the_membership_tier(member, partner, vip, tiers):
    today = timezone.localdate()
    tier_override(member_id=member.pk, tier=tiers[2], reason="Aktion", staff_user=None, until=today)
    membership = sell(member, partner, vip).membership
    tier_end_grants(today=today + timedelta(days=1))
    member.refresh_from_db()
    assert member.tier == vip
    tier_memberships_end_due(today=membership.ends + timedelta(days=1))
    member.refresh_from_db()
    assert member.tier == tiers[0]  # the grant had ended: it does not come back


def test_the_database_refuses_bad_tiers_and_memberships(member, vip, tiers):
    with pytest.raises(IntegrityError), transaction.atomic():
        Tier.objects.create(name_de="Gratis-VIP", rank=20, kind=Tier.Kind.PAID, fee_amount=Decimal("0"),
                            fee_currency="EUR", duration_months=12)
    with pytest.raises(IntegrityError), transaction.atomic():
        TierMembership.objects.create(member=member, tier=vip, source="invitation", starts=date(2026, 5, 1),
                                      ends=date(2026, 5, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        TierMembership.objects.create(member=member, tier=vip, source="paid", starts=date(2026, 5, 1),
                                      ends=date(2027, 4, 30))  # paid without its fee purchase


def test_tier_validation_names_the_fields(tiers):
    tier = Tier(name_de="VIP", rank=30, kind=Tier.Kind.PAID)
    with pytest.raises(ValidationError) as error:
        tier.full_clean()
    assert {"fee_amount", "fee_currency", "duration_months"} <= set(error.value.message_dict)
    points = Tier(name_de="Bronze", rank=31, fee_amount=Decimal("5"), threshold_points=10)
    with pytest.raises(ValidationError) as error:
        points.full_clean()
    assert "fee_amount" in error.value.message_dict


def test_a_merge_brings_the_duplicates_membership_along(member, partner, vip, tiers):
    from members.merge import member_merge

    duplicate = factories.enrolled_member()
    membership = sell(duplicate, partner, vip).membership
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk, reason="Dublette", staff_user=None)
    member.refresh_from_db()
    membership.refresh_from_db()
    assert (member.tier, membership.member_id) == (vip, member.pk)
    tier_memberships_end_due(today=membership.ends + timedelta(days=1))
    member.refresh_from_db()
    assert member.tier == tiers[0]
    assert verify_ledger() == 0


def test_the_demo_shows_a_vip_member_and_an_ambassador_and_seeds_them_once(db, capsys):
    from django.core.management import call_command

    from members.demo import DEMO_MEMBER_EMAIL
    from members.models import Member

    call_command("seed_demo", members=5)
    erika = Member.objects.select_related("tier").get(email__iexact=DEMO_MEMBER_EMAIL)
    assert erika.tier.kind == Tier.Kind.PAID
    held = TierMembership.objects.filter(status="active")
    assert sorted(held.values_list("source", flat=True)) == ["invitation", "paid", "paid"]
    assert all(row.member.tier_id == row.tier_id for row in held.select_related("member"))
    call_command("seed_demo", members=5)
    assert TierMembership.objects.count() == 3
    assert verify_ledger() == 0
