"""Coupons follow a merge of duplicates and appear in the member's data export."""

from __future__ import annotations

import pytest

from members.gdpr import export_sections
from members.merge import member_merge
from offers.models import MemberOffer
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_merge_moves_the_duplicates_coupons_but_keeps_the_survivors_own(tiers):
    survivor, duplicate = factories.enrolled_member(), factories.enrolled_member()
    shared = factories.OfferFactory()
    kept = factories.MemberOfferFactory(member=survivor, offer=shared)
    left_behind = factories.MemberOfferFactory(member=duplicate, offer=shared)
    moved = factories.activated_coupon(duplicate)
    member_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk)
    assert set(MemberOffer.objects.filter(member=survivor).values_list("pk", flat=True)) == {kept.pk, moved.pk}
    assert MemberOffer.objects.get(pk=left_behind.pk).member_id == duplicate.pk


def test_the_data_export_lists_the_members_coupons_but_not_the_holdout(tiers):
    member = factories.enrolled_member()
    factories.activated_coupon(member, name_de="Bio-Woche")
    factories.MemberOfferFactory(member=member, holdout=True)
    section = export_sections(member, [member.pk])["coupons"]
    assert [(row["coupon"], row["uses"], row["activated_at"] is not None) for row in section] == [
        ("Bio-Woche", 0, True)]
