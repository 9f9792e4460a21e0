from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from rewards.purchases import member_stats_refresh, purchase_record
from rewards.returns import purchase_return


def test_rolling_statistics_drop_purchases_that_left_the_window(member, partner, base_rule):
    now = timezone.now()
    purchase_record(member_id=member.pk, partner=partner, order_reference="OLD", amount=Decimal("100"),
                    occurred_at=now - timedelta(days=300))
    purchase_record(member_id=member.pk, partner=partner, order_reference="NEW", amount=Decimal("50"), currency="CHF",
                    occurred_at=now - timedelta(days=10))
    member.refresh_from_db()
    assert member.purchases_12m == 2
    assert member.spend_12m == Decimal("153.00")  # 100 EUR + 50 CHF × 1.06

    member_stats_refresh(now=now + timedelta(days=100))  # the old purchase is now 400 days back
    member.refresh_from_db()
    assert member.purchases_12m == 1
    assert member.spend_12m == Decimal("53.00")
    assert member.lifetime_spend == Decimal("153.00")  # lifetime never decays


def test_returns_count_against_rolling_spend(member, partner, base_rule):
    outcome = purchase_record(member_id=member.pk, partner=partner, order_reference="R", amount=Decimal("80"))
    purchase_return(purchase_id=outcome.purchase.pk, reference="R-1", amount=Decimal("30"))
    member_stats_refresh()
    member.refresh_from_db()
    assert member.spend_12m == Decimal("50.00")
    assert member.purchases_12m == 1
