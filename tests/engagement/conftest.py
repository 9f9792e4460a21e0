from __future__ import annotations

from decimal import Decimal

import pytest

from rewards.purchases import LineData, purchase_record


@pytest.fixture
def buy(partner, base_rule):
    """buy(member, "REF", "20.00", lines=[...]): a purchase through the rewards service."""

    def record(member, reference: str, amount: str = "20.00", **kwargs):
        lines = kwargs.pop("lines", None)
        if lines is not None:
            lines = [LineData(amount=Decimal(a), category=c, sku=s) for a, c, s in lines]
        return purchase_record(member_id=member.pk, partner=partner, order_reference=reference,
                               amount=Decimal(amount), lines=lines, **kwargs).purchase

    return record
