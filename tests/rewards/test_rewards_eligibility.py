"""Catalogue eligibility: the SQL view (`redeemable`) and the Python check (`unavailable_reason`)
are both derived from the rules in rewards/eligibility.py. Here they must agree, with each other
and with a plain reference (the check as it was written by hand before), on many random cases
in PostgreSQL: tiers, the member's status, tier and balance, stock, limits with earlier vouchers,
windows around the moment (to the microsecond), the active and catalogue flags and the price.

Each example runs in its own savepoint, rolled back at its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from members.models import Member, Tier
from rewards import eligibility
from rewards.codes import generate_code
from rewards.models import Redemption, Reward
from rewards.vouchers import catalogue_for
from tests import factories

AT = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
@pytest.fixture(autouse=True)
def english():
    """The reasons are compared as written (English msgids); German is the default language."""
    with translation.override("en"):
        yield


SCOPE_SETS = [eligibility.EVERY_VOUCHER, eligibility.CATALOGUE_PICK, eligibility.MEMBER_VIEW, eligibility.ALL]
OFFSETS = [None, timedelta(days=-30), timedelta(microseconds=-1), timedelta(0), timedelta(microseconds=1),
           timedelta(days=30)]
STATUSES = [Redemption.Status.ISSUED, Redemption.Status.USED, Redemption.Status.CANCELLED,
            Redemption.Status.EXPIRED]


def reference_reason(reward: Reward, member: Member, *, at: datetime, counted: int,
                     scopes: frozenset) -> str | None:
    """The check as it was written by hand in rewards/vouchers.py, rewards/api.py and the portal."""
    S = eligibility.Scope
    if S.MEMBER in scopes and member.status != Member.Status.ACTIVE:
        return "the member is not active"
    if not reward.active:
        return "it is not available any more"
    if reward.stock is not None and reward.stock <= 0:
        return "it is sold out"
    if S.CATALOGUE in scopes:
        if not reward.in_catalogue:
            return "it is not available any more"
        if reward.valid_from and at < reward.valid_from:
            return "it is not available yet"
        if reward.valid_until and at > reward.valid_until:
            return "it is not available any more"
        if reward.min_tier_id and (member.tier is None or member.tier.rank < reward.min_tier.rank):
            return f"it needs the {reward.min_tier.name} tier"
        if reward.limit_per_member is not None and counted >= reward.limit_per_member:
            return "you have reached the limit for this reward"
    if S.PRICE in scopes and reward.points_cost > member.points_balance:
        return f"you need {reward.points_cost - member.points_balance} more points"
    return None


@dataclass(frozen=True)
class RewardCase:
    active: bool
    in_catalogue: bool
    points_cost: int
    stock: int | None
    limit_per_member: int | None
    min_tier: int | None  # index into the case's tiers
    valid_from: timedelta | None
    valid_until: timedelta | None
    mine: tuple[str, ...]  # statuses of the member's earlier vouchers of it
    others: int  # vouchers of it other members hold (never count)


@dataclass(frozen=True)
class Case:
    tier_ranks: tuple[int, ...]
    member_status: str
    member_tier: int | None
    balance: int
    rewards: tuple[RewardCase, ...]


@st.composite
def cases(draw) -> Case:
    ranks = tuple(draw(st.lists(st.integers(min_value=0, max_value=9), unique=True, max_size=4)))
    tier_index = st.none() | st.integers(min_value=0, max_value=len(ranks) - 1) if ranks else st.none()
    balance = draw(st.sampled_from([0, 1, 99, 100, 101, 250, 10_000]))
    reward = st.builds(
        RewardCase,
        active=st.booleans(),
        in_catalogue=st.booleans(),
        # around the balance, so "exactly enough" and "one short" come up often
        points_cost=st.sampled_from([1, 100, 250, 10_000]) | st.just(max(1, balance)) | st.just(balance + 1),
        stock=st.none() | st.integers(min_value=0, max_value=3),
        limit_per_member=st.none() | st.integers(min_value=0, max_value=3),
        min_tier=tier_index,
        valid_from=st.sampled_from(OFFSETS),
        valid_until=st.sampled_from(OFFSETS),
        mine=st.lists(st.sampled_from(STATUSES), max_size=4).map(tuple),
        others=st.integers(min_value=0, max_value=2),
    )
    return Case(tier_ranks=ranks, member_status=draw(st.sampled_from(Member.Status.values)),
                member_tier=draw(tier_index), balance=balance,
                rewards=tuple(draw(st.lists(reward, min_size=1, max_size=4))))


def build(case: Case, partner) -> tuple[Member, list[Reward]]:
    """The case's rows, in few statements (bulk inserts): many examples run in a few seconds."""
    tiers = Tier.objects.bulk_create([Tier(rank=rank, name_de=f"Stufe {rank}", name_en=f"Tier {rank}",
                                           threshold_points=rank * 1000) for rank in case.tier_ranks])
    member = Member.objects.create(email="case@example.org", status=case.member_status,
                                   points_balance=case.balance,
                                   tier=tiers[case.member_tier] if case.member_tier is not None else None)
    other = Member.objects.create(email="other@example.org")
    rewards = Reward.objects.bulk_create([Reward(
        kind=Reward.Kind.AMOUNT_VOUCHER, name_de="Prämie", name_en="Reward",
        active=spec.active, in_catalogue=spec.in_catalogue, points_cost=spec.points_cost, stock=spec.stock,
        limit_per_member=spec.limit_per_member, min_tier=tiers[spec.min_tier] if spec.min_tier is not None else None,
        valid_from=AT + spec.valid_from if spec.valid_from is not None else None,
        valid_until=AT + spec.valid_until if spec.valid_until is not None else None,
    ) for spec in case.rewards])
    Redemption.objects.bulk_create(
        [voucher(member, reward, status, partner) for spec, reward in zip(case.rewards, rewards, strict=True)
         for status in spec.mine]
        + [voucher(other, reward, Redemption.Status.ISSUED, partner)
           for spec, reward in zip(case.rewards, rewards, strict=True) for _ in range(spec.others)])
    member = Member.objects.select_related("tier").get(pk=member.pk)
    return member, list(Reward.objects.filter(pk__in=[reward.pk for reward in rewards])
                        .select_related("min_tier").order_by("pk"))


def voucher(member: Member, reward: Reward, status: str, partner) -> Redemption:
    extra = {}
    if status == Redemption.Status.USED:
        extra = {"used_at": AT, "used_by_partner": partner}
    elif status == Redemption.Status.CANCELLED:
        extra = {"cancelled_at": AT}
    return Redemption(member=member, reward=reward, status=status, points=0, code=generate_code(),
                      expires_at=timezone.now() + timedelta(days=30), **extra)


def counted(member: Member) -> dict[int, int]:
    """Per reward, the member's vouchers that are not cancelled (counted here in Python)."""
    counts: dict[int, int] = {}
    for reward_id, status in Redemption.objects.filter(member=member).values_list("reward_id", "status"):
        if status != Redemption.Status.CANCELLED:
            counts[reward_id] = counts.get(reward_id, 0) + 1
    return counts


@given(case=cases())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_sql_view_and_the_python_check_agree_on_every_case(case, partner):
    with transaction.atomic():
        member, rewards = build(case, partner)
        ids = [reward.pk for reward in rewards]
        counts = counted(member)
        for scopes in SCOPE_SETS:
            sql = set(eligibility.redeemable(Reward.objects.filter(pk__in=ids), member, at=AT, scopes=scopes)
                      .values_list("pk", flat=True))
            batch = eligibility.unavailable_reasons(rewards, member, at=AT, scopes=scopes)
            for reward in rewards:
                expected = reference_reason(reward, member, at=AT, counted=counts.get(reward.pk, 0), scopes=scopes)
                assert eligibility.unavailable_reason(reward, member, at=AT, scopes=scopes) == expected
                assert batch[reward.pk] == expected
                assert (reward.pk in sql) == (expected is None), (scopes, expected)
        # What the catalogue lists at all: switched on, in the catalogue, not over.
        listed = set(eligibility.listed(AT).filter(pk__in=ids).values_list("pk", flat=True))
        assert listed == {reward.pk for reward in rewards if reward.active and reward.in_catalogue
                          and (reward.valid_until is None or reward.valid_until >= AT)}
        transaction.set_rollback(True)


# --- Worked examples -------------------------------------------------------------------------------

def test_worked_example_a_gold_reward_once_per_member(member, tiers):
    """Silver member, 300 points; a Gold reward for 200 points, once per member."""
    reward = factories.RewardFactory(points_cost=200, min_tier=tiers[2], limit_per_member=1)
    Member.objects.filter(pk=member.pk).update(tier=tiers[1], points_balance=300)
    member = Member.objects.select_related("tier").get(pk=member.pk)

    def views():
        member.refresh_from_db()
        sql = eligibility.redeemable(Reward.objects.all(), member).filter(pk=reward.pk).exists()
        return eligibility.unavailable_reason(reward, member, scopes=eligibility.ALL), sql

    assert views() == ("it needs the Gold tier", False)
    Member.objects.filter(pk=member.pk).update(tier=tiers[2])
    assert views() == (None, True)
    cancelled = factories.RedemptionFactory(member=member, reward=reward, status=Redemption.Status.CANCELLED,
                                            cancelled_at=AT)
    assert views() == (None, True), "a cancelled voucher gave its points back: it doesn't count"
    factories.RedemptionFactory(member=member, reward=reward)
    assert views() == ("you have reached the limit for this reward", False)
    assert cancelled.status == Redemption.Status.CANCELLED


def test_worked_example_a_window_includes_its_bounds_and_the_price_is_the_last_question(member):
    Member.objects.filter(pk=member.pk).update(points_balance=99)
    member.refresh_from_db()
    starts_now = factories.RewardFactory(points_cost=100, valid_from=AT)
    ends_now = factories.RewardFactory(points_cost=99, valid_until=AT)
    later = factories.RewardFactory(points_cost=10, valid_from=AT + timedelta(microseconds=1))
    reasons = eligibility.unavailable_reasons([starts_now, ends_now, later], member, at=AT,
                                              scopes=eligibility.MEMBER_VIEW)
    assert reasons == {starts_now.pk: "you need 1 more points", ends_now.pk: None,
                       later.pk: "it is not available yet"}
    assert list(eligibility.redeemable(Reward.objects.all(), member, at=AT)) == [ends_now]
    # A minute later the one that ended is not even listed; the one not yet started still is.
    assert set(eligibility.listed(AT + timedelta(minutes=1))) == {starts_now, later}


def test_the_portal_catalogue_and_the_partner_view_read_the_same_rules(member, tiers):
    Member.objects.filter(pk=member.pk).update(points_balance=150)
    member = Member.objects.select_related("tier").get(pk=member.pk)
    ok = factories.RewardFactory(points_cost=150)
    factories.RewardFactory(points_cost=151)
    factories.RewardFactory(points_cost=10, stock=0)
    assert [reward for reward, reason in catalogue_for(member) if reason is None] == [ok]
    assert list(eligibility.redeemable(eligibility.listed(), member)) == [ok]


def test_a_rule_with_a_negation_is_refused_rather_than_read_differently(member):
    reward = factories.RewardFactory()
    with pytest.raises(ValueError, match="without negation"):
        eligibility._holds(~Q(active=False), reward, {})
