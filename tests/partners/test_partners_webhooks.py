"""The outbox's entry point for announcements (members/announcements.py): deliveries of an event
for a list of partners, one per active subscription of theirs to that event."""

from __future__ import annotations

import datetime
from decimal import Decimal

from partners.models import WebhookDelivery, WebhookEvent
from partners.webhooks import webhooks_record
from tests import factories


def test_deliveries_are_recorded_for_the_named_partners_subscriptions_to_the_event_only(db):
    named, also_named, other = (factories.PartnerFactory() for _ in range(3))
    wanted = factories.WebhookSubscriptionFactory(partner=named, events=[WebhookEvent.POINTS_EARNED])
    also_wanted = factories.WebhookSubscriptionFactory(partner=also_named)
    factories.WebhookSubscriptionFactory(partner=named, events=[WebhookEvent.TIER_CHANGED])  # another event
    factories.WebhookSubscriptionFactory(partner=named, active=False)  # ended
    factories.WebhookSubscriptionFactory(partner=other)  # not in the audience

    deliveries = webhooks_record([(
        WebhookEvent.POINTS_EARNED, {"member_id": "m-1", "amount": Decimal("1.50"), "day": datetime.date(2026, 5, 1)},
        [named.pk, also_named.pk])])

    assert sorted(delivery.subscription_id for delivery in deliveries) == sorted([wanted.pk, also_wanted.pk])
    stored = WebhookDelivery.objects.filter(pk__in=[delivery.pk for delivery in deliveries])
    assert {(delivery.event, delivery.status) for delivery in stored} == {(WebhookEvent.POINTS_EARNED, "pending")}
    # Stored as the API shows it: Decimals and dates as strings.
    expected = {"member_id": "m-1", "amount": "1.50", "day": "2026-05-01"}
    assert [delivery.payload for delivery in stored] == [expected, expected]


def test_an_empty_audience_records_nothing(db):
    factories.WebhookSubscriptionFactory()
    assert webhooks_record([(WebhookEvent.POINTS_EARNED, {"member_id": "m-1"}, [])]) == []
    assert not WebhookDelivery.objects.exists()
