"""The challenge engine: each goal, period and audience, replays, returns, the reward once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from core.events import capture, publish
from engagement import subscribers
from engagement.events import BadgeAwarded, ChallengeCompleted
from engagement.models import ChallengeContribution, ChallengeProgress, MemberBadge
from feedback.services import response_record
from referrals.events import ReferralRewarded
from rewards.events import PurchaseRecorded
from rewards.ledger import points_debit
from rewards.models import PointEntry, Redemption
from rewards.returns import purchase_return
from tests import factories

pytestmark = pytest.mark.django_db


def progress(member, challenge) -> ChallengeProgress | None:
    return ChallengeProgress.objects.filter(member=member, challenge=challenge).first()


def challenge_points(member) -> list[int]:
    return list(PointEntry.objects.filter(member=member, source="challenge").values_list("points", flat=True))


# --- Goals ---------------------------------------------------------------------------------------

def test_three_purchases_complete_the_challenge_and_pay_its_points_once(member, buy):
    challenge = factories.ChallengeFactory(target=3, reward_points=100)
    buy(member, "P-1")
    buy(member, "P-2")
    assert progress(member, challenge).value == 2 and progress(member, challenge).completed_at is None
    with capture() as events:
        buy(member, "P-3")
    row = progress(member, challenge)
    assert row.value == 3 and row.completed_at is not None and row.rewarded and row.points_awarded == 100
    assert challenge_points(member) == [100]
    assert [e.challenge_id for e in events if isinstance(e, ChallengeCompleted)] == [challenge.pk]
    buy(member, "P-4")  # past the target: nothing more
    assert challenge_points(member) == [100]
    assert progress(member, challenge).value == 4


def test_spend_counts_euros_of_every_currency(member, buy, settings):
    settings.LOYALTY_CURRENCY_TO_EUR = {"EUR": "1", "CHF": "0.90"}
    challenge = factories.ChallengeFactory(goal="spend", target=Decimal("50.00"))
    buy(member, "S-1", "30.00")
    buy(member, "S-2", "10.00", currency="CHF")
    assert progress(member, challenge).value == Decimal("39.00")
    buy(member, "S-3", "11.00")
    assert progress(member, challenge).completed_at is not None


def test_a_category_counts_only_purchases_with_a_line_of_it(member, buy):
    challenge = factories.ChallengeFactory(goal="category", category="bio", target=1)
    buy(member, "C-1", "10.00", lines=[("10.00", "drinks", "")])
    assert progress(member, challenge) is None
    buy(member, "C-2", "15.00", lines=[("5.00", "drinks", ""), ("10.00", "bio", "")])
    assert progress(member, challenge).completed_at is not None


def test_a_product_counts_by_its_sku(member, buy):
    challenge = factories.ChallengeFactory(goal="product", sku="4001234", target=1)
    buy(member, "K-1", "10.00", lines=[("10.00", "", "999")])
    assert progress(member, challenge) is None
    buy(member, "K-2", "10.00", lines=[("10.00", "", "4001234")])
    assert progress(member, challenge).completed_at is not None


def test_a_rewarded_referral_counts_for_the_referrer(member):
    challenge = factories.ChallengeFactory(goal="referral", target=1, reward_points=50)
    with transaction.atomic():
        publish(ReferralRewarded(member_id=member.pk, referral_id=41, referee_id=member.pk + 1000))
    assert progress(member, challenge).completed_at is not None and challenge_points(member) == [50]


def test_survey_answers_count_for_the_named_survey_only(member):
    survey, other = factories.SurveyFactory(), factories.SurveyFactory()
    challenge = factories.ChallengeFactory(goal="survey", survey=survey, target=1)
    response_record(survey_id=other.pk, score=9, channel="portal", member_id=member.pk)
    assert progress(member, challenge) is None
    response_record(survey_id=survey.pk, score=9, channel="staff")  # anonymous: counts for no one
    assert not ChallengeContribution.objects.exists()
    response_record(survey_id=survey.pk, score=9, channel="portal", member_id=member.pk)
    assert progress(member, challenge).completed_at is not None


def test_a_streak_completes_after_enough_consecutive_weeks(member, buy):
    now = timezone.now()
    challenge = factories.ChallengeFactory(goal="streak", target=3, starts_at=now - timedelta(weeks=10))
    buy(member, "W-1", occurred_at=now - timedelta(weeks=2))
    buy(member, "W-1b", occurred_at=now - timedelta(weeks=2))  # the same week counts once
    buy(member, "W-2", occurred_at=now - timedelta(weeks=1))
    assert progress(member, challenge).value == 2
    buy(member, "W-3", occurred_at=now)
    assert progress(member, challenge).completed_at is not None


# --- Period and audience -------------------------------------------------------------------------

def test_purchases_outside_the_period_do_not_count(member, buy):
    now = timezone.now()
    challenge = factories.ChallengeFactory(starts_at=now - timedelta(days=5), ends_at=now + timedelta(days=5))
    buy(member, "EARLY", occurred_at=now - timedelta(days=6))
    buy(member, "LATE", occurred_at=now + timedelta(days=6))
    assert progress(member, challenge) is None
    buy(member, "IN", occurred_at=now)
    assert progress(member, challenge).value == 1


def test_an_inactive_challenge_counts_nothing(member, buy):
    challenge = factories.ChallengeFactory(active=False)
    buy(member, "X")
    assert progress(member, challenge) is None


def test_a_segment_challenge_counts_only_its_members(tiers, buy):
    segment = factories.SegmentFactory()
    factories.SegmentConditionFactory(segment=segment, field="country", operator="in", value="AT")
    challenge = factories.ChallengeFactory(segment=segment, target=1)
    inside = factories.enrolled_member(country="AT")
    outside = factories.enrolled_member(country="DE")
    buy(inside, "A-1")
    buy(outside, "D-1")
    assert progress(inside, challenge).completed_at is not None
    assert progress(outside, challenge) is None


# --- Replays count once --------------------------------------------------------------------------

def test_a_replayed_purchase_event_counts_once(member, buy):
    challenge = factories.ChallengeFactory(target=2)
    purchase = buy(member, "R-1")
    event = PurchaseRecorded(member_id=member.pk, purchase_id=purchase.pk, store_id=None, order_reference="R-1",
                             amount="20.00", currency="EUR", points=20, occurred_at=purchase.occurred_at.isoformat())
    with transaction.atomic():
        publish([event, event])
    with transaction.atomic():
        publish(event)
    row = progress(member, challenge)
    assert row.value == 1 and row.completed_at is None
    assert ChallengeContribution.objects.filter(member=member).count() == 1


def test_a_retried_purchase_counts_once(member, buy):
    challenge = factories.ChallengeFactory(target=2)
    buy(member, "SAME")
    buy(member, "SAME")  # the till's retry: the same purchase
    assert progress(member, challenge).value == 1


def test_a_replayed_survey_answer_counts_once(member):
    challenge = factories.ChallengeFactory(goal="survey", target=2)
    response = response_record(survey_id=factories.SurveyFactory().pk, score=7, channel="portal",
                               member_id=member.pk)
    from feedback.events import SurveyAnswered

    with transaction.atomic():
        publish(SurveyAnswered(member_id=member.pk, survey_id=response.survey_id, response_id=response.pk))
    assert progress(member, challenge).value == 1


# --- Returns -------------------------------------------------------------------------------------

def test_a_return_undoes_the_progress_of_its_purchase(member, buy):
    challenge = factories.ChallengeFactory(target=3)
    spend = factories.ChallengeFactory(goal="spend", target=Decimal("100"))
    first = buy(member, "RT-1", "40.00")
    buy(member, "RT-2", "20.00")
    purchase_return(purchase_id=first.pk, reference="RET-1", amount=Decimal("10.00"))
    assert progress(member, challenge).value == 2  # a partial return keeps the purchase
    assert progress(member, spend).value == Decimal("50.00")
    purchase_return(purchase_id=first.pk, reference="RET-2", amount=Decimal("30.00"))
    assert progress(member, challenge).value == 1
    assert progress(member, spend).value == Decimal("20.00")


def test_returning_the_last_product_of_the_category_undoes_the_try(member, buy):
    challenge = factories.ChallengeFactory(goal="category", category="bio", target=2)
    purchase = buy(member, "B-1", "15.00", lines=[("5.00", "drinks", ""), ("10.00", "bio", "")])
    bio_line = purchase.lines.get(category="bio")
    from rewards.returns import ReturnLine

    purchase_return(purchase_id=purchase.pk, reference="RB", lines=[ReturnLine(line_id=bio_line.pk,
                                                                                 amount=Decimal("10.00"))])
    assert progress(member, challenge).value == 0


def test_a_return_after_completion_lowers_progress_but_keeps_the_spent_reward(member, buy):
    reward = factories.RewardFactory(points_cost=200)
    challenge = factories.ChallengeFactory(target=3, reward_points=300, reward=reward)
    purchases = [buy(member, f"K-{n}", "10.00") for n in range(3)]
    row = progress(member, challenge)
    assert row.rewarded and row.redemption is not None
    points_debit(member_id=member.pk, points=320, reason="spent it all")  # 30 earned + 300 bonus, less 10
    member.refresh_from_db()
    assert member.points_balance == 10

    purchase_return(purchase_id=purchases[0].pk, reference="BACK", amount=Decimal("10.00"))
    row = progress(member, challenge)
    assert row.value == 2 and row.completed_at is not None and row.rewarded  # the rule: a reward stays
    assert challenge_points(member) == [300]
    assert Redemption.objects.get(pk=row.redemption_id).status == Redemption.Status.ISSUED
    buy(member, "K-again", "10.00")  # back at the target: not rewarded a second time
    assert challenge_points(member) == [300]
    assert Redemption.objects.filter(member=member, source="challenge").count() == 1


def test_a_return_after_the_window_changes_no_progress(member, buy, settings):
    settings.LOYALTY_CHALLENGE_RETURN_DAYS = 30
    now = timezone.now()
    challenge = factories.ChallengeFactory(target=5, starts_at=now - timedelta(days=60))
    old = buy(member, "OLD", occurred_at=now - timedelta(days=40))
    purchase_return(purchase_id=old.pk, reference="LATE-RETURN", amount=Decimal("20.00"))
    assert progress(member, challenge).value == 1


# --- Rewards exactly once ------------------------------------------------------------------------

def test_voucher_and_badge_are_given_once_and_announced(member, buy):
    badge = factories.BadgeFactory()
    reward = factories.RewardFactory(points_cost=500)
    challenge = factories.ChallengeFactory(target=1, reward_points=0, reward=reward, badge=badge)
    second = factories.ChallengeFactory(target=2, reward_points=10, badge=badge)
    with capture() as events:
        buy(member, "V-1")
        buy(member, "V-2")
    voucher = Redemption.objects.get(member=member, source="challenge")
    assert voucher.points == 0 and voucher.reward == reward  # free of points
    assert MemberBadge.objects.filter(member=member).count() == 1
    assert [e.badge_id for e in events if isinstance(e, BadgeAwarded)] == [badge.pk]  # not again for `second`
    assert {e.challenge_id for e in events if isinstance(e, ChallengeCompleted)} == {challenge.pk, second.pk}


def test_a_sold_out_voucher_does_not_undo_the_purchase(member, buy):
    reward = factories.RewardFactory(points_cost=200, stock=0)
    challenge = factories.ChallengeFactory(target=1, reward_points=0, reward=reward)
    purchase = buy(member, "SOLD-OUT")
    row = progress(member, challenge)
    assert purchase.pk and row.rewarded and row.redemption is None and row.reward_note


# --- Cost ----------------------------------------------------------------------------------------

def test_no_query_for_a_purchase_when_no_challenge_is_active(member, django_assert_num_queries):
    factories.ChallengeFactory(active=False)
    event = PurchaseRecorded(member_id=member.pk, purchase_id=1, store_id=None, order_reference="Q",
                             amount="5.00", currency="EUR", points=5)
    subscribers.count_purchases([event])  # loads the per-process copy
    with django_assert_num_queries(0):
        subscribers.count_purchases([event])
        subscribers.count_referrals([ReferralRewarded(member_id=member.pk, referral_id=1, referee_id=2)])


def test_a_batch_of_purchase_events_costs_the_same_queries_for_one_or_five_members(tiers):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    factories.ChallengeFactory(target=10)
    factories.ChallengeFactory(goal="streak", target=4)

    def batch_queries(members, first_id: int) -> int:
        events = [PurchaseRecorded(member_id=member.pk, purchase_id=first_id + n, store_id=None,
                                   order_reference=f"B{first_id + n}", amount="5.00", currency="EUR", points=5)
                  for n, member in enumerate(members)]
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            publish(events)
        return len(captured)

    batch_queries([factories.enrolled_member()], 1)  # loads the per-process copy
    one = batch_queries([factories.enrolled_member()], 10)
    five = batch_queries([factories.enrolled_member() for _ in range(5)], 20)
    assert ChallengeProgress.objects.filter(value=1).count() == 14
    # savepoint and its release, contributions, member locks, progress rows, their locks, sums,
    # streak weeks, update: the same for any number of members
    assert one == five == 9, (one, five)


# --- Merges --------------------------------------------------------------------------------------

def test_a_merge_combines_progress_moves_badges_and_rewards_nothing_twice(tiers, buy):
    from members.merge import member_merge

    badge = factories.BadgeFactory()
    three = factories.ChallengeFactory(target=3, reward_points=100)
    first = factories.ChallengeFactory(target=1, reward_points=40, badge=badge)
    survivor, duplicate = factories.enrolled_member(), factories.enrolled_member()
    buy(survivor, "M-1")
    buy(duplicate, "M-2")
    buy(duplicate, "M-3")
    assert challenge_points(survivor) == [40] and challenge_points(duplicate) == [40]
    member_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk, reason="same person")
    row = progress(survivor, three)
    assert row.value == 3 and row.rewarded  # combined, it reached the target: rewarded once
    assert challenge_points(survivor) == [100, 40]
    assert progress(survivor, first).rewarded and not ChallengeProgress.objects.filter(member=duplicate).exists()
    assert list(MemberBadge.objects.filter(badge=badge).values_list("member_id", flat=True)) == [survivor.pk]
