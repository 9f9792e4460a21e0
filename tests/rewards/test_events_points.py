"""Every path that changes points, a tier, a purchase or a voucher publishes its event (issue #21),
whatever started it: the partner API, the portal, the console, an import or a beat job."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse
from django.utils import timezone, translation

from core.events import capture
from members.events import MembersMerged
from members.merge import member_merge
from members.models import Member, TierHistory
from members.services import member_link_or_enrol
from referrals import services as referrals
from rewards.events import (
    PointsEarned,
    PointsExpired,
    PointsSpent,
    PurchaseRecorded,
    TierChanged,
    VoucherIssued,
    VoucherUsed,
)
from rewards.ledger import points_credit, points_expire_due
from rewards.models import PointEntry, Redemption
from rewards.purchases import LineData, purchase_record, release_due_pending_points
from rewards.tiers import tier_end_grants, tier_override, tier_review_all
from rewards.vouchers import redemption_cancel, redemption_create
from tests import factories
from tests.import_helpers import csv_bytes, full_import

pytestmark = pytest.mark.django_db


def of(events, event_type, **fields) -> list:
    """The captured events of `event_type` whose fields have the given values."""
    return [event for event in events if type(event) is event_type
            and all(getattr(event, name) == value for name, value in fields.items())]


def buy(member, partner, reference: str, amount: str = "42.00", **kwargs):
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=Decimal(amount),
                           **kwargs).purchase


# --- Partner API ---------------------------------------------------------------------------------

def test_an_api_purchase_publishes_purchase_recorded_and_points_earned_with_the_partner(api, member, partner):
    with capture() as events:
        response = api.post("/purchases/", {"card_number": member.card_number, "order_reference": "E-1",
                                            "amount": "42.00", "currency": "EUR"})
    assert response.status_code == 201, response.text
    purchase_id = response.json()["id"]
    [recorded] = of(events, PurchaseRecorded)
    assert (recorded.member_id, recorded.partner_id, recorded.order_reference, recorded.amount, recorded.points) == (
        member.pk, partner.pk, "E-1", "42.00", 42)
    assert of(events, PointsEarned, member_id=member.pk, partner_id=partner.pk, points=42, balance=42,
              kind=PointEntry.Kind.EARN)
    assert recorded.purchase_id == of(events, PointsEarned)[0].purchase_id
    assert purchase_id  # the public id of the same purchase


def test_a_repeated_api_purchase_publishes_nothing(api, member):
    body = {"card_number": member.card_number, "order_reference": "E-2", "amount": "10.00", "currency": "EUR"}
    api.post("/purchases/", body)
    with capture() as events:
        buy(member, api.partner, "E-2", "10.00")
    assert events == []


def test_an_api_return_publishes_points_spent(api, member):
    purchase = api.post("/purchases/", {"card_number": member.card_number, "order_reference": "E-3",
                                        "amount": "50.00", "currency": "EUR"}).json()
    with capture() as events:
        response = api.post(f"/purchases/{purchase['id']}/returns/", {"reference": "CN-1", "amount": "20.00"})
    assert response.status_code == 201, response.text
    [spent] = of(events, PointsSpent)
    assert (spent.member_id, spent.kind, spent.points, spent.balance) == (member.pk, PointEntry.Kind.REVERSAL, 20, 30)


def test_an_upgrade_earned_by_a_purchase_publishes_tier_changed_with_the_partner(member, partner, base_rule):
    with capture() as events:
        purchase = buy(member, partner, "BIG", "600.00")
    [changed] = of(events, TierChanged)
    assert (changed.member_id, changed.partner_id, changed.purchase_id, changed.cause) == (
        member.pk, partner.pk, purchase.pk, TierHistory.Cause.EARNED)
    member.refresh_from_db()
    assert (changed.to_tier_id, changed.to_tier_name, changed.to_tier_rank) == (
        member.tier_id, member.tier.name, member.tier.rank)


def test_a_voucher_consumed_at_a_till_publishes_voucher_used(api, member, partner):
    points_credit(member_id=member.pk, points=500, reason="start")
    reward = factories.RewardFactory(points_cost=100)
    voucher = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk}).json()
    with capture() as events:
        response = api.post("/vouchers/consume/", {"code": voucher["code"], "store": "S1"})
    assert response.status_code == 200, response.text
    [used] = of(events, VoucherUsed)
    assert (used.member_id, used.partner_id, used.reward_id) == (member.pk, partner.pk, reward.pk)


# --- Portal and console --------------------------------------------------------------------------

@pytest.fixture
def portal_member(tiers):
    user = factories.UserFactory(email="erika@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return member_link_or_enrol(user=user, email=user.email)


def test_a_portal_redemption_publishes_voucher_issued_and_points_spent(client, portal_member):
    points_credit(member_id=portal_member.pk, points=300, reason="start")
    reward = factories.RewardFactory(points_cost=150)
    client.force_login(portal_member.user)
    with translation.override("en"):
        url = reverse("portal:redeem", args=[reward.pk])
    with capture() as events:
        client.post(url)
    voucher = Redemption.objects.get(member=portal_member)
    assert of(events, VoucherIssued, member_id=portal_member.pk, redemption_id=voucher.pk, reward_id=reward.pk,
              points=150, source=Redemption.Source.CATALOGUE)
    assert of(events, PointsSpent, member_id=portal_member.pk, kind=PointEntry.Kind.REDEEM, points=150, balance=150,
              redemption_id=voucher.pk)


def test_a_console_adjustment_publishes_points_spent(client, member):
    points_credit(member_id=member.pk, points=100, reason="start")
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    with capture() as events:
        response = client.post(reverse("admin:members_member_adjust_points", args=[member.pk]),
                               {"points": "-10", "reason": "Kulanz rückgängig"})
    assert response.status_code == 302
    assert of(events, PointsSpent, member_id=member.pk, kind=PointEntry.Kind.ADJUST, points=10, balance=90)


def test_cancelling_a_voucher_publishes_the_refund_as_points_earned(member):
    points_credit(member_id=member.pk, points=300, reason="start")
    voucher = redemption_create(member_id=member.pk, reward_id=factories.RewardFactory(points_cost=100).pk)
    with capture() as events:
        redemption_cancel(redemption_id=voucher.pk)
    assert of(events, PointsEarned, member_id=member.pk, kind=PointEntry.Kind.REFUND, points=100, balance=300,
              redemption_id=voucher.pk)


def test_a_tier_override_publishes_tier_changed(member, tiers):
    gold = next(tier for tier in tiers if tier.rank == 2)
    with capture() as events:
        tier_override(member_id=member.pk, tier=gold, reason="VIP", staff_user=None)
    assert of(events, TierChanged, member_id=member.pk, to_tier_id=gold.pk, cause=TierHistory.Cause.STAFF)


# --- Imports ---------------------------------------------------------------------------------------

def test_a_purchase_import_publishes_purchase_recorded_and_points_earned(tiers, partner, base_rule):
    anna = factories.enrolled_member(customer_number="K1")
    content = csv_bytes("Kundennummer;E-Mail;Bestellnummer;Datum;Betrag;Währung;Filiale\n"
                        "K1;;A-1;15.03.2025 14:30;12,00;EUR;\n", "cp1252")
    with capture() as events:
        full_import(content, kind="purchases", options={"partner_id": partner.pk})
    assert of(events, PurchaseRecorded, member_id=anna.pk, order_reference="A-1")
    assert of(events, PointsEarned, member_id=anna.pk, points=12)


def test_an_import_of_new_members_publishes_their_opening_balances_in_one_batch(tiers):
    rows = "".join(f"K{n};k{n}@example.de;{n * 10}\n" for n in range(1, 6))
    with capture() as events:
        full_import(csv_bytes("Kundennummer;E-Mail;Punkte\n" + rows))
    earned = of(events, PointsEarned)
    members = dict(Member.objects.values_list("pk", "points_balance"))
    assert sorted((event.member_id, event.points, event.balance) for event in earned) == sorted(
        (pk, balance, balance) for pk, balance in members.items())


def test_an_opening_balance_for_existing_members_publishes_points_earned(tiers):
    member = factories.enrolled_member(customer_number="K1")
    points_credit(member_id=member.pk, points=5, reason="before")
    with capture() as events:
        full_import(csv_bytes("Kundennummer;Punkte\nK1;70\n"))
    assert of(events, PointsEarned, member_id=member.pk, points=70, balance=75, kind=PointEntry.Kind.ADJUST)


# --- Beat jobs -------------------------------------------------------------------------------------

def test_the_expiry_job_publishes_points_expired_for_every_member_in_one_batch(tiers, settings):
    settings.LOYALTY_POINTS_EXPIRY_MONTHS = 1
    members = [factories.enrolled_member() for _ in range(3)]
    for number, member in enumerate(members, start=1):
        points_credit(member_id=member.pk, points=10 * number, reason="old")
    with capture() as events:
        report = points_expire_due(now=timezone.now() + timedelta(days=40))
    assert report.members == 3
    assert sorted((event.member_id, event.points, event.balance) for event in of(events, PointsExpired)) == [
        (member.pk, 10 * number, 0) for number, member in enumerate(members, start=1)]


def test_releasing_held_points_publishes_points_earned(member, partner, base_rule, settings):
    settings.LOYALTY_RETURN_WINDOW_DAYS = 14
    purchase = buy(member, partner, "H-1", "30.00")
    with capture() as events:
        assert release_due_pending_points(now=timezone.now() + timedelta(days=15)) == 0  # not due by its own date
    assert events == []
    purchase.__class__.objects.filter(pk=purchase.pk).update(available_at=timezone.now() - timedelta(minutes=1))
    with capture() as events:
        assert release_due_pending_points() == 1
    assert of(events, PointsEarned, member_id=member.pk, points=30, balance=30, purchase_id=purchase.pk)


def test_the_tier_review_publishes_tier_changed(member, tiers):
    silver = next(tier for tier in tiers if tier.rank == 1)
    Member.objects.filter(pk=member.pk).update(tier=silver)  # held without the points for it
    with capture() as events:
        tier_review_all()
    assert of(events, TierChanged, member_id=member.pk, from_tier_id=silver.pk, cause=TierHistory.Cause.REVIEW)


def test_the_end_of_a_grant_publishes_tier_changed(member, tiers):
    gold = next(tier for tier in tiers if tier.rank == 2)
    tier_override(member_id=member.pk, tier=gold, reason="paid", staff_user=None, until=date.today())
    with capture() as events:
        assert tier_end_grants(today=date.today() + timedelta(days=1)) == 1
    assert of(events, TierChanged, member_id=member.pk, from_tier_id=gold.pk, cause=TierHistory.Cause.GRANT_ENDED)


# --- Merge -----------------------------------------------------------------------------------------

def test_a_merge_publishes_members_merged_the_transfer_and_the_tier_the_survivor_takes(member, tiers):
    gold = next(tier for tier in tiers if tier.rank == 2)
    duplicate = factories.enrolled_member()
    points_credit(member_id=duplicate.pk, points=40, reason="start")
    tier_override(member_id=duplicate.pk, tier=gold, reason="VIP", staff_user=None)
    with capture() as events:
        outcome = member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    assert of(events, MembersMerged, member_id=member.pk, duplicate_id=duplicate.pk, merge_id=outcome.merge.pk)
    assert of(events, PointsSpent, member_id=duplicate.pk, kind=PointEntry.Kind.TRANSFER, points=40, balance=0)
    assert of(events, PointsEarned, member_id=member.pk, kind=PointEntry.Kind.TRANSFER, points=40, balance=40)
    assert of(events, TierChanged, member_id=member.pk, to_tier_id=gold.pk, cause=TierHistory.Cause.MERGE)
    assert outcome.merge.points_moved == 40  # recorded by the rewards subscriber


# --- Programmes: referrals, campaigns, cashback, stamp cards ---------------------------------------

def test_a_referral_reward_publishes_points_earned_for_both(tiers, partner, base_rule):
    factories.ReferralProgramFactory()
    referrer = factories.enrolled_member(email="anna.berger@gmail.com")
    referee = factories.enrolled_member(email="ben@example.org")
    referral = referrals.referral_attach(referee_id=referee.pk, code=factories.referral_code(referrer),
                                         channel="signup")
    buy(referee, partner, "R-1", "30.00")  # qualifies the referral through the PurchaseRecorded subscriber
    with capture() as events:
        assert referrals.referrals_release_due(now=timezone.now() + timedelta(days=15)) == 1
    referral.refresh_from_db()
    assert referral.status == referral.Status.REWARDED
    assert of(events, PointsEarned, member_id=referrer.pk) and of(events, PointsEarned, member_id=referee.pk)


def test_a_campaign_publishes_its_bonus_points_and_voucher(tiers):
    from campaigns import services as campaigns

    member = factories.enrolled_member()
    factories.ConsentRecordFactory(member=member, purpose="email")
    reward = factories.RewardFactory(in_catalogue=False)
    campaign = factories.CampaignFactory(bonus_points=50, reward=reward)
    factories.VariantFactory(campaign=campaign)
    with capture() as events:
        campaigns.campaign_launch(campaign_id=campaign.pk)
        campaigns.campaign_run_inline(campaign_id=campaign.pk)
    assert of(events, PointsEarned, member_id=member.pk, points=50, kind=PointEntry.Kind.BONUS)
    assert of(events, VoucherIssued, member_id=member.pk, reward_id=reward.pk, source=Redemption.Source.CAMPAIGN)


def test_cashback_publishes_its_voucher_and_the_points_it_takes(member, partner, base_rule):
    program = factories.CashbackProgramFactory(threshold_points=1000, reward__points_cost=500)
    with capture() as events:
        buy(member, partner, "C1", "1200.00")
    [issued] = of(events, VoucherIssued, source=Redemption.Source.CASHBACK)
    assert (issued.member_id, issued.reward_id, issued.points) == (member.pk, program.reward_id, 500)
    assert of(events, PointsSpent, member_id=member.pk, kind=PointEntry.Kind.REDEEM, points=500,
              redemption_id=issued.redemption_id)


def test_a_full_stamp_card_publishes_its_voucher(member, partner, base_rule):
    program = factories.StampCardProgramFactory(stamps_needed=2, category="", mode="item")
    with capture() as events:
        purchase_record(member_id=member.pk, partner=partner, order_reference="S1", amount=Decimal("9"),
                        lines=[LineData(amount=Decimal("9"), quantity=2)])
    assert of(events, VoucherIssued, member_id=member.pk, reward_id=program.reward_id,
              source=Redemption.Source.STAMP_CARD)
