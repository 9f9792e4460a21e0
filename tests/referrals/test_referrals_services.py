"""Referrals: attribution, qualification, hold period, cap, fraud checks and the review queue."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.db.models import Sum
from django.utils import timezone

from core.errors import ReasonRequired
from members.models import Member
from referrals import services
from referrals.errors import ReferralCodeInvalid, ReferralNotAllowed, ReferralTransitionInvalid
from referrals.models import Referral
from rewards.models import PointEntry, Redemption
from rewards.purchases import purchase_record
from rewards.returns import purchase_return
from tests import factories

pytestmark = pytest.mark.django_db

LATER = timedelta(days=15)  # past the default hold period of 14 days


@pytest.fixture
def program(tiers):
    return factories.ReferralProgramFactory()


@pytest.fixture
def referrer(tiers):
    return factories.enrolled_member(email="anna.berger@gmail.com", phone="+49 30 1234567",
                                     street="Hauptstraße 1", postal_code="10115", city="Berlin")


@pytest.fixture
def referee(tiers):
    return factories.enrolled_member(email="ben@example.org", phone="0171 7654321", street="Lindenweg 5",
                                     postal_code="80331", city="München")


def attach(referee, referrer, **kwargs) -> Referral:
    kwargs.setdefault("channel", Referral.Channel.SIGNUP)
    return services.referral_attach(referee_id=referee.pk, code=factories.referral_code(referrer), **kwargs)


def buy(member, partner, reference: str, amount: str, **kwargs):
    return purchase_record(member_id=member.pk, partner=partner, order_reference=reference, amount=Decimal(amount),
                           **kwargs).purchase


def ledger(member, side: str | None = None):
    entries = PointEntry.objects.filter(member=member, source="referral")
    return entries.filter(reference__endswith=f":{side}") if side else entries


def balance_matches_ledger(member) -> bool:
    member.refresh_from_db()
    total = PointEntry.objects.filter(member=member).aggregate(total=Sum("points", default=0))["total"]
    return member.points_balance == total


# --- The worked example -----------------------------------------------------------------------

def test_first_purchase_qualifies_and_both_are_paid_after_the_hold_period(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    assert referral.status == Referral.Status.PENDING and referral.review_reasons == []

    buy(referee, partner, "R-1", "30.00")
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED
    assert referral.qualifying_purchase.order_reference == "R-1"
    assert referral.payable_at == referral.qualified_at + timedelta(days=14)

    assert services.referrals_release_due() == 0  # still in the hold period
    assert services.referrals_release_due(now=timezone.now() + LATER) == 1
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REWARDED and referral.rewarded_at is not None
    assert (referral.referrer_points, referral.referee_points) == (500, 250)
    assert [e.reference for e in ledger(referrer)] == [f"referral:{referral.pk}:referrer"]
    assert [e.points for e in ledger(referee)] == [250]
    assert balance_matches_ledger(referrer) and balance_matches_ledger(referee)


def test_a_purchase_below_the_minimum_waits_for_a_bigger_one(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    buy(referee, partner, "SMALL", "19.99")
    referral.refresh_from_db()
    assert referral.status == Referral.Status.PENDING
    buy(referee, partner, "BIG", "20.00")
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED and referral.qualifying_purchase.order_reference == "BIG"


def test_chf_purchases_count_in_euro(program, referrer, referee, partner, settings):
    settings.LOYALTY_CURRENCY_TO_EUR = {"EUR": "1", "CHF": "0.90"}
    referral = attach(referee, referrer)
    buy(referee, partner, "CHF-1", "21.00", currency="CHF")  # 18.90 EUR
    referral.refresh_from_db()
    assert referral.status == Referral.Status.PENDING


def test_the_referrers_own_purchases_do_not_qualify_anything(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    buy(referrer, partner, "OWN", "100.00")
    referral.refresh_from_db()
    assert referral.status == Referral.Status.PENDING


def test_sign_up_event_qualifies_at_once_and_pays_without_hold(tiers, referrer, referee, monkeypatch):
    factories.ReferralProgramFactory(qualifying_event="signup", hold_days=0)
    queued = []
    monkeypatch.setattr("core.tasks.enqueue", lambda task, *args: queued.append((task.name, args)))
    referral = attach(referee, referrer)
    assert referral.status == Referral.Status.QUALIFIED
    assert queued == [("referrals.tasks.pay_referral", (referral.pk,))]
    services.referral_pay(referral_id=referral.pk)
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REWARDED


def test_voucher_rewards_are_issued_as_referral_vouchers(tiers, referrer, referee, partner):
    reward = factories.RewardFactory(in_catalogue=False)
    factories.ReferralProgramFactory(referrer_points=0, referrer_reward=reward, referee_points=100)
    referral = attach(referee, referrer)
    buy(referee, partner, "V-1", "25.00")
    referral = services.referral_pay(referral_id=referral.pk, now=timezone.now() + LATER)
    assert referral.status == Referral.Status.REWARDED
    voucher = Redemption.objects.get(member=referrer)
    assert (voucher.source, voucher.points, voucher.reward) == (Redemption.Source.REFERRAL, 0, reward)
    assert referral.referrer_voucher == voucher and not ledger(referrer).exists()
    assert ledger(referee).get().points == 100


# --- Hold period and returns ---------------------------------------------------------------------

def test_a_return_inside_the_hold_period_pays_nothing(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    purchase = buy(referee, partner, "RET-1", "40.00")
    purchase_return(purchase_id=purchase.pk, reference="RET-1-R", amount=Decimal("40.00"))
    services.referrals_release_due(now=timezone.now() + LATER)
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REJECTED
    assert "returned" in referral.reject_reason and referral.rejected_at is not None
    assert not ledger(referrer).exists() and not ledger(referee).exists()


def test_a_partial_return_that_keeps_the_minimum_still_pays(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    purchase = buy(referee, partner, "RET-2", "40.00")
    purchase_return(purchase_id=purchase.pk, reference="RET-2-R", amount=Decimal("15.00"))
    services.referrals_release_due(now=timezone.now() + LATER)
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REWARDED


def test_a_partial_return_below_the_minimum_pays_nothing(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    purchase = buy(referee, partner, "RET-3", "25.00")
    purchase_return(purchase_id=purchase.pk, reference="RET-3-R", amount=Decimal("10.00"))
    services.referrals_release_due(now=timezone.now() + LATER)
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REJECTED


# --- Attribution window ----------------------------------------------------------------------------

def test_a_purchase_after_the_attribution_window_expires_the_referral(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    buy(referee, partner, "LATE", "50.00", occurred_at=timezone.now() + timedelta(days=31))
    referral.refresh_from_db()
    assert referral.status == Referral.Status.EXPIRED and referral.expired_at is not None


def test_a_purchase_inside_the_window_from_the_link_click_qualifies(program, referrer, referee, partner):
    referral = attach(referee, referrer, channel=Referral.Channel.LINK,
                      started_at=timezone.now() - timedelta(days=29))
    # The referee joined after the click? Not here: it joined "now", after the click. Fine.
    buy(referee, partner, "IN", "50.00")
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED


def test_the_expiry_job_expires_pending_referrals_past_the_window(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    assert services.referrals_expire_due(now=timezone.now() + timedelta(days=29)) == 0
    assert services.referrals_expire_due(now=timezone.now() + timedelta(days=31)) == 1
    referral.refresh_from_db()
    assert referral.status == Referral.Status.EXPIRED
    buy(referee, partner, "AFTER", "50.00")  # nothing happens to an expired referral
    referral.refresh_from_db()
    assert referral.status == Referral.Status.EXPIRED


def test_a_link_older_than_the_window_is_refused(program, referrer, referee):
    with pytest.raises(ReferralNotAllowed):
        attach(referee, referrer, channel=Referral.Channel.LINK, started_at=timezone.now() - timedelta(days=31))


def test_purchases_from_before_the_referral_do_not_qualify(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    buy(referee, partner, "HIST", "80.00", occurred_at=timezone.now() - timedelta(days=2))
    referral.refresh_from_db()
    assert referral.status == Referral.Status.PENDING


# --- Exactly once ------------------------------------------------------------------------------------

def test_the_qualifying_purchase_posted_twice_pays_once(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    buy(referee, partner, "DUP", "30.00")
    buy(referee, partner, "DUP", "30.00")
    buy(referee, partner, "SECOND", "30.00")
    later = timezone.now() + LATER
    services.referrals_release_due(now=later)
    services.referrals_release_due(now=later)
    services.referral_pay(referral_id=referral.pk, now=later)
    assert ledger(referrer).count() == 1 and ledger(referee).count() == 1
    assert balance_matches_ledger(referrer)


# --- Cap ---------------------------------------------------------------------------------------------

def test_the_yearly_cap_stops_the_referrers_reward_but_not_the_friends(tiers, referrer, partner):
    factories.ReferralProgramFactory(yearly_cap=2)
    friends = [factories.enrolled_member() for _ in range(3)]
    later = timezone.now() + LATER
    referrals = []
    for index, friend in enumerate(friends):
        referrals.append(attach(friend, referrer))
        buy(friend, partner, f"CAP-{index}", "30.00")
        services.referral_pay(referral_id=referrals[-1].pk, now=later)
    for referral in referrals:
        referral.refresh_from_db()
    assert [r.status for r in referrals] == [Referral.Status.REWARDED] * 3
    assert [r.referrer_capped for r in referrals] == [False, False, True]
    assert [r.referrer_points for r in referrals] == [500, 500, 0]
    assert ledger(referrer).count() == 2
    assert all(ledger(friend).count() == 1 for friend in friends)


# --- Fraud checks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", ["annaberger@gmail.com", "a.n.n.a.berger+ref@gmail.com",
                                   "AnnaBerger+1@googlemail.com", "ANNA.BERGER+X@GMAIL.COM"])
def test_the_same_mailbox_behind_another_spelling_goes_to_review(program, referrer, email):
    referee = factories.enrolled_member(email=email)
    referral = attach(referee, referrer)
    assert Referral.Flag.SAME_EMAIL in referral.review_reasons


def test_dots_count_at_providers_that_do_not_ignore_them(program, tiers):
    referrer = factories.enrolled_member(email="anna.berger@web.de")
    referee = factories.enrolled_member(email="annaberger@web.de")
    assert attach(referee, referrer).review_reasons == []


@pytest.mark.parametrize("phone", ["030 1234567", "+49 (30) 123 45 67", "0049 30/1234567"])
def test_the_same_phone_in_another_format_goes_to_review(program, referrer, phone):
    referee = factories.enrolled_member(phone=phone)
    assert Referral.Flag.SAME_PHONE in attach(referee, referrer).review_reasons


def test_the_same_address_goes_to_review(program, referrer):
    referee = factories.enrolled_member(street="Hauptstr. 1", postal_code="10115")
    assert attach(referee, referrer).review_reasons == [Referral.Flag.SAME_ADDRESS]


def test_a_member_from_before_the_link_click_goes_to_review(program, referrer, referee):
    Member.objects.filter(pk=referee.pk).update(joined_at=timezone.now() - timedelta(days=3))
    referral = attach(referee, referrer, channel=Referral.Channel.LINK, started_at=timezone.now() - timedelta(days=1))
    assert referral.review_reasons == [Referral.Flag.EXISTING_MEMBER]


def test_a_long_standing_member_given_a_code_by_staff_goes_to_review(program, referrer, referee):
    Member.objects.filter(pk=referee.pk).update(joined_at=timezone.now() - timedelta(days=90))
    referral = attach(referee, referrer, channel=Referral.Channel.STAFF)
    assert referral.review_reasons == [Referral.Flag.EXISTING_MEMBER]


def test_more_referrals_in_a_week_than_the_threshold_go_to_review(tiers, referrer):
    factories.ReferralProgramFactory(weekly_review_threshold=3)
    reasons = [attach(factories.enrolled_member(), referrer).review_reasons for _ in range(4)]
    assert reasons == [[], [], [], [Referral.Flag.WEEKLY_LIMIT]]


def test_referring_oneself_is_refused(program, referrer):
    with pytest.raises(ReferralNotAllowed):
        attach(referrer, referrer)


def test_a_referee_merged_into_the_referrer_is_held_before_paying(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    buy(referee, partner, "M-1", "30.00")
    Member.objects.filter(pk=referee.pk).update(status=Member.Status.MERGED, merged_into=referrer)
    services.referral_pay(referral_id=referral.pk, now=timezone.now() + LATER)
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED
    assert Referral.Flag.SAME_MEMBER in referral.review_reasons
    assert not ledger(referrer).exists()


def test_flagged_referrals_wait_in_the_queue_and_are_paid_when_approved(program, referrer, partner):
    referee = factories.enrolled_member(phone="030 1234567")
    referral = attach(referee, referrer)
    buy(referee, partner, "F-1", "30.00")
    assert services.referrals_release_due(now=timezone.now() + LATER) == 0
    assert list(Referral.objects.awaiting_review()) == [referral]
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED and not ledger(referrer).exists()

    staff = factories.StaffUserFactory()
    Referral.objects.filter(pk=referral.pk).update(payable_at=timezone.now())
    referral = services.referral_approve(referral_id=referral.pk, staff_user=staff)
    assert referral.status == Referral.Status.REWARDED and referral.reviewed_by == staff
    assert not Referral.objects.awaiting_review().exists()
    assert ledger(referrer).count() == 1 and ledger(referee).count() == 1


def test_approving_before_the_hold_ends_leaves_it_for_the_release_job(program, referrer, partner):
    referee = factories.enrolled_member(phone="030 1234567")
    referral = attach(referee, referrer)
    buy(referee, partner, "F-2", "30.00")
    referral = services.referral_approve(referral_id=referral.pk, staff_user=None)
    assert referral.status == Referral.Status.QUALIFIED
    assert services.referrals_release_due(now=timezone.now() + LATER) == 1


def test_rejecting_needs_a_reason_and_pays_nothing(program, referrer, partner):
    referee = factories.enrolled_member(phone="030 1234567")
    referral = attach(referee, referrer)
    with pytest.raises(ReasonRequired):
        services.referral_reject(referral_id=referral.pk, reason="  ", staff_user=None)
    referral = services.referral_reject(referral_id=referral.pk, reason="Same household", staff_user=None)
    assert referral.status == Referral.Status.REJECTED and referral.reject_reason == "Same household"
    buy(referee, partner, "F-3", "30.00")
    services.referrals_release_due(now=timezone.now() + LATER)
    assert not ledger(referrer).exists() and not ledger(referee).exists()
    with pytest.raises(ReferralTransitionInvalid):
        services.referral_reject(referral_id=referral.pk, reason="again", staff_user=None)


# --- Attribution rules --------------------------------------------------------------------------------

def test_an_unknown_code_is_refused(program, referee):
    with pytest.raises(ReferralCodeInvalid):
        services.referral_attach(referee_id=referee.pk, code="NOPE2345", channel=Referral.Channel.API)


def test_without_an_active_programme_nothing_is_recorded(tiers, referrer, referee):
    with pytest.raises(ReferralNotAllowed):
        attach(referee, referrer)


def test_a_member_is_referred_once(program, referrer, referee):
    first = attach(referee, referrer)
    assert attach(referee, referrer) == first  # a repeated confirmation is no error
    other = factories.enrolled_member()
    with pytest.raises(ReferralNotAllowed):
        attach(referee, other)


def test_codes_are_typed_loosely(program, referrer, referee):
    code = factories.referral_code(referrer)
    referral = services.referral_attach(referee_id=referee.pk, code=f" {code[:4].lower()}-{code[4:]} ",
                                        channel=Referral.Channel.API)
    assert referral.referrer == referrer and referral.code == code


def test_only_one_programme_can_be_active(program):
    with pytest.raises(IntegrityError):
        factories.ReferralProgramFactory()


def test_the_export_lists_referrals_made_and_received(program, referrer, referee):
    attach(referee, referrer)
    from members.gdpr import member_export_data

    exported = member_export_data(referrer)["referrals"]
    assert [(row["role"], row["friend"], row["status"]) for row in exported] == [
        ("referrer", f"Erika {referee.last_name[0]}.", "pending")]
    assert member_export_data(referee)["referrals"][0]["role"] == "referee"


@pytest.mark.parametrize(("raw", "expected"), [
    ("A.B+x@GoogleMail.com", "ab@gmail.com"), ("a.b+x@outlook.de", "a.b@outlook.de"),
    ("a.b+x@web.de", "a.b+x@web.de"), ("  Max@Example.ORG ", "max@example.org"),
])
def test_email_normalisation(raw, expected):
    assert services.normalise_email(raw) == expected


def test_a_programme_must_reward_someone(tiers):
    from django.core.exceptions import ValidationError

    program = factories.ReferralProgramFactory.build(referrer_points=0, referee_points=0)
    with pytest.raises(ValidationError):
        program.clean()


def test_a_blocked_referrer_is_not_paid_but_the_friend_is(program, referrer, referee, partner):
    referral = attach(referee, referrer)
    buy(referee, partner, "BL-1", "30.00")
    Member.objects.filter(pk=referrer.pk).update(status=Member.Status.BLOCKED)
    referral = services.referral_pay(referral_id=referral.pk, now=timezone.now() + LATER)
    assert referral.status == Referral.Status.REWARDED
    assert (referral.referrer_points, referral.referee_points) == (0, 250)
    assert not ledger(referrer).exists()
