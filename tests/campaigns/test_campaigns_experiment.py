"""A/B assignment and the uplift statistics: pure functions with worked examples."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from campaigns.experiment import Z_95, assign, bucket, uplift

MEMBERS = range(1, 20_001)


def test_assignment_is_deterministic_and_independent_of_order():
    first = [assign(7, member, holdout_percent=10, weights=[1, 1]) for member in MEMBERS]
    again = [assign(7, member, holdout_percent=10, weights=[1, 1]) for member in reversed(MEMBERS)]
    assert first == list(reversed(again))


def test_assignment_differs_between_campaigns():
    one = [assign(1, member, holdout_percent=50, weights=[1]) for member in range(1, 1001)]
    two = [assign(2, member, holdout_percent=50, weights=[1]) for member in range(1, 1001)]
    assert one != two


def test_holdout_and_weights_split_the_members_in_proportion():
    arms = Counter(assign(42, member, holdout_percent=10, weights=[1, 3]) for member in MEMBERS)
    total = len(MEMBERS)
    assert abs(arms[None] / total - 0.10) < 0.01
    assert abs(arms[0] / total - 0.90 * 0.25) < 0.01
    assert abs(arms[1] / total - 0.90 * 0.75) < 0.01


def test_no_holdout_means_no_control_group_and_full_holdout_everybody():
    assert all(assign(3, member, holdout_percent=0, weights=[1]) == 0 for member in range(1, 2000))
    assert all(assign(3, member, holdout_percent=100, weights=[1]) is None for member in range(1, 2000))


def test_bucket_is_in_the_unit_interval():
    values = [bucket(5, member) for member in range(1, 5000)]
    assert all(0 <= value < 1 for value in values)
    assert 0.45 < sum(values) / len(values) < 0.55


def test_a_campaign_needs_a_variant_with_weight():
    with pytest.raises(ValueError):
        assign(1, 1, holdout_percent=10, weights=[])
    with pytest.raises(ValueError):
        assign(1, 1, holdout_percent=10, weights=[0])


def test_uplift_worked_example():
    # 120 of 1,000 treated members bought, 80 of 1,000 in the control group.
    result = uplift(conversions=120, size=1000, control_conversions=80, control_size=1000)
    standard_error = math.sqrt(0.12 * 0.88 / 1000 + 0.08 * 0.92 / 1000)  # 0.0133866…
    assert result.treatment_rate == pytest.approx(0.12)
    assert result.control_rate == pytest.approx(0.08)
    assert result.difference == pytest.approx(0.04)
    assert result.low == pytest.approx(0.04 - Z_95 * standard_error)
    assert result.high == pytest.approx(0.04 + Z_95 * standard_error)
    assert result.low == pytest.approx(0.013762, abs=1e-6)
    assert result.high == pytest.approx(0.066238, abs=1e-6)
    assert result.relative == pytest.approx(0.5)
    assert result.significant
    assert result.points == pytest.approx((4.0, 1.3762, 6.6238), abs=1e-4)


def test_an_interval_that_contains_zero_is_not_significant():
    result = uplift(conversions=11, size=100, control_conversions=10, control_size=100)
    assert result.low < 0 < result.high
    assert not result.significant


def test_unequal_groups_use_each_group_size():
    result = uplift(conversions=300, size=9000, control_conversions=20, control_size=1000)
    expected = math.sqrt((1 / 30) * (29 / 30) / 9000 + 0.02 * 0.98 / 1000)
    assert (result.high - result.low) / 2 == pytest.approx(Z_95 * expected)


def test_uplift_edge_cases():
    assert uplift(conversions=0, size=0, control_conversions=1, control_size=10) is None
    assert uplift(conversions=1, size=10, control_conversions=0, control_size=0) is None
    zero = uplift(conversions=0, size=50, control_conversions=0, control_size=50)
    assert zero.difference == zero.low == zero.high == 0 and zero.relative is None
    with pytest.raises(ValueError):
        uplift(conversions=11, size=10, control_conversions=0, control_size=10)
