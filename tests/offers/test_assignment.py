"""Assigning an offer to its audience: everyone, a segment, purchase history only with consent,
the deterministic holdout, idempotent re-runs, one statement whatever the audience's size."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import ConsentRecord, Member
from members.services import consent_record
from offers import services
from offers.models import MemberOffer, Offer
from rewards.purchases import LineData, purchase_record
from tests import factories

pytestmark = pytest.mark.django_db


def _members(count: int) -> list[Member]:
    return [factories.enrolled_member() for _ in range(count)]


def _assigned(offer: Offer, *, holdout: bool | None = None) -> set[int]:
    rows = MemberOffer.objects.filter(offer=offer)
    if holdout is not None:
        rows = rows.filter(holdout=holdout)
    return set(rows.values_list("member_id", flat=True))


def _consent(member: Member, granted: bool = True) -> None:
    consent_record(member=member, purpose=ConsentRecord.Purpose.PERSONALISED, granted=granted,
                   source=ConsentRecord.Source.PORTAL)


def _bought(member: Member, partner, category: str, days_ago: int) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    purchase_record(member_id=member.pk, partner=partner, order_reference=f"{category}-{member.pk}-{days_ago}",
                    amount=Decimal("10.00"), occurred_at=at, booked_at=at,
                    lines=[LineData(amount=Decimal("10.00"), category=category)])


def test_an_offer_for_everyone_goes_to_every_active_member_once(tiers):
    members = _members(3)
    blocked = factories.enrolled_member()
    Member.objects.filter(pk=blocked.pk).update(status=Member.Status.BLOCKED)
    offer = factories.OfferFactory(audience=Offer.Audience.EVERYONE)
    report = services.offer_assign(offer_id=offer.pk)
    assert report.assigned == 3 and _assigned(offer) == {member.pk for member in members}
    again = services.offer_assign(offer_id=offer.pk)
    assert again.assigned == 0 and MemberOffer.objects.filter(offer=offer).count() == 3


def test_a_segment_offer_goes_to_the_segment_only(tiers):
    austrian = factories.enrolled_member(country="AT")
    factories.enrolled_member(country="DE")
    segment = factories.SegmentConditionFactory(field="country", operator="in", value="AT").segment
    offer = factories.OfferFactory(audience=Offer.Audience.SEGMENT, segment=segment)
    services.offer_assign(offer_id=offer.pk)
    assert _assigned(offer) == {austrian.pk}


def test_purchase_history_chooses_only_members_who_consent_to_personalised_offers(tiers, partner, base_rule):
    with_consent, without_consent, withdrawn, long_ago, other_category = _members(5)
    for member in (with_consent, without_consent, withdrawn, other_category):
        _bought(member, partner, "Bio" if member is not other_category else "Wein", days_ago=10)
    _bought(long_ago, partner, "Bio", days_ago=200)
    for member in (with_consent, withdrawn, long_ago, other_category):
        _consent(member)
    _consent(withdrawn, granted=False)  # the latest record counts
    offer = factories.OfferFactory(audience=Offer.Audience.HISTORY, history_category="bio", history_days=90)
    services.offer_assign(offer_id=offer.pk)
    assert _assigned(offer) == {with_consent.pk}


def test_the_holdout_is_deterministic_and_never_sees_the_coupon(tiers):
    members = _members(40)
    offer = factories.OfferFactory(holdout_percent=50)
    report = services.offer_assign(offer_id=offer.pk)
    held = _assigned(offer, holdout=True)
    assert report.holdout == len(held) and 0 < len(held) < 40
    # The SQL and the Python rule agree member by member.
    assert held == {member.pk for member in members if services.is_holdout(offer.pk, member.pk, 50)}
    from offers.selectors import coupons_of

    for member in members:
        assert coupons_of(member).exists() == (member.pk not in held)


def test_no_holdout_keeps_everyone_treated(tiers):
    _members(5)
    offer = factories.OfferFactory(holdout_percent=0)
    assert services.offer_assign(offer_id=offer.pk).holdout == 0


def test_an_expired_or_inactive_offer_is_not_assigned(tiers):
    _members(2)
    inactive = factories.OfferFactory(active=False)
    expired = factories.OfferFactory(valid_from=timezone.now() - timedelta(days=9),
                                     valid_until=timezone.now() - timedelta(days=1))
    assert services.offer_assign(offer_id=inactive.pk).assigned == 0
    assert services.offer_assign(offer_id=expired.pk).assigned == 0


def test_the_assignment_is_one_insert_whatever_the_audience_size(tiers):
    _members(30)
    offer = factories.OfferFactory(holdout_percent=10)
    with CaptureQueriesContext(connection) as queries:
        services.offer_assign(offer_id=offer.pk)
    inserts = [query for query in queries.captured_queries if query["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1 and len(queries.captured_queries) <= 5
    assert MemberOffer.objects.filter(offer=offer).count() == 30


def test_the_beat_task_assigns_every_offer_in_force(tiers):
    from offers.tasks import assign_active_offers

    _members(2)
    factories.OfferFactory()
    factories.OfferFactory()
    assert assign_active_offers() == 4
