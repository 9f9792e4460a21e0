from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum

from loyalty_site.errors import InvalidMerge
from members.models import ConsentRecord, Member, MemberMerge
from members.services import consent_record, member_merge
from rewards.models import PointEntry, Purchase
from rewards.services import purchase_record
from tests import factories


def test_merge_moves_balance_as_a_pair_of_entries_and_repoints_history(member, partner, base_rule, tiers):
    duplicate = factories.enrolled_member()
    purchase_record(member_id=member.pk, partner=partner, order_reference="S-1", amount=Decimal("300"))
    purchase_record(member_id=duplicate.pk, partner=partner, order_reference="D-1", amount=Decimal("250"))
    consent_record(member=duplicate, purpose=ConsentRecord.Purpose.SMS, granted=True, source="staff")

    outcome = member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk, reason="doppelt")
    member.refresh_from_db()
    duplicate.refresh_from_db()

    assert member.points_balance == 550
    assert duplicate.points_balance == 0
    transfers = PointEntry.objects.filter(kind=PointEntry.Kind.TRANSFER).order_by("points")
    assert [(entry.member_id, entry.points) for entry in transfers] == [(duplicate.pk, -250), (member.pk, 250)]
    for someone in (member, duplicate):
        assert PointEntry.objects.filter(member=someone).aggregate(s=Sum("points"))["s"] == someone.points_balance
    assert Purchase.objects.get(order_reference="D-1").member == member
    assert ConsentRecord.objects.filter(member=member, purpose=ConsentRecord.Purpose.SMS).exists()
    assert (duplicate.status, duplicate.merged_into) == (Member.Status.MERGED, member)
    assert MemberMerge.objects.get(duplicate=duplicate).points_moved == 250 == outcome.merge.points_moved
    # The duplicate's earn entries stay where they were written, and still count for the tier:
    assert PointEntry.objects.filter(member=duplicate, kind=PointEntry.Kind.EARN).count() == 1
    assert member.tier == tiers[1]  # 300 + 250 qualifying points


def test_merge_refuses_itself_and_a_second_merge(member):
    duplicate = factories.enrolled_member()
    with pytest.raises(InvalidMerge):
        member_merge(survivor_id=member.pk, duplicate_id=member.pk)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    with pytest.raises(InvalidMerge):
        member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    other = factories.enrolled_member()
    with pytest.raises(InvalidMerge):
        member_merge(survivor_id=duplicate.pk, duplicate_id=other.pk)


def test_merge_keeps_the_duplicates_portal_login(member):
    user = factories.UserFactory()
    duplicate = factories.enrolled_member()
    Member.objects.filter(pk=duplicate.pk).update(user=user)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    member.refresh_from_db()
    assert member.user == user
