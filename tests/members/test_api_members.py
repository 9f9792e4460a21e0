"""Members over real HTTP: enrol, look up, read, update only what may change, balance, ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils import timezone

from members.models import Member
from partners.models import WebhookDelivery, WebhookEvent
from rewards.purchases import purchase_record
from tests import factories


def test_enrol_creates_a_member_on_the_entry_tier(api):
    response = api.post("/members/", {"email": "Neu@Example.org", "first_name": "Nina", "last_name": "Neu",
                                      "language": "en", "country": "AT"})
    assert response.status_code == 201, response.text
    body = response.json()
    member = Member.objects.get(public_id=body["id"])
    assert member.email == "Neu@Example.org" and member.country == "AT"
    assert body["tier"]["rank"] == 0 and body["tier"]["name"] == "Basic"
    assert body["points_balance"] == 0 and body["status"] == "active"
    assert len(body["card_number"]) == 16 and body["customer_number"] == member.customer_number


def test_enrol_announces_the_member_to_the_partners_webhooks(api, partner):
    subscription = factories.WebhookSubscriptionFactory(partner=partner, events=[WebhookEvent.MEMBER_ENROLLED])
    factories.WebhookSubscriptionFactory(events=[WebhookEvent.MEMBER_ENROLLED])  # another partner's
    member_id = api.post("/members/", {"email": "hook@example.org"}).json()["id"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.subscription == subscription and delivery.event == "member.enrolled"
    assert delivery.payload["member"]["id"] == member_id


def test_enrolling_a_known_email_is_a_409(api, member):
    response = api.post("/members/", {"email": member.email.upper()})
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_member"


def test_enrol_refuses_protected_and_unknown_fields(api):
    response = api.post("/members/", {"email": "x@example.org", "points_balance": 5000, "tier": 3, "shoe_size": 44})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["points_balance"] == ["This field cannot be changed."]
    assert errors["tier"] == ["This field cannot be changed."]
    assert errors["shoe_size"] == ["Unknown field."]
    assert not Member.objects.filter(email="x@example.org").exists()


def test_enrol_validates_fields(api):
    response = api.post("/members/", {"email": "not-an-email", "country": "Germany", "birth_date": "2999-01-01"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email", "country", "birth_date"}


def test_look_up_by_email_customer_number_or_card_number(api, partner, member):
    factories.enrolled_member()  # someone else
    factories.relate(member, partner)  # an e-mail finds only members the partner knows
    for params in ({"email": member.email.upper()}, {"customer_number": member.customer_number},
                   {"card_number": member.card_number}):
        results = api.get("/members/", params=params).json()["results"]
        assert [row["id"] for row in results] == [str(member.public_id)], params
    assert api.get("/members/", params={"card_number": "0000"}).json()["results"] == []


def test_listing_members_without_a_look_up_is_refused(api, member):
    response = api.get("/members/")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]


def test_read_a_member_and_404_for_unknown_or_erased(api, partner, member):
    factories.relate(member, partner)
    body = api.get(f"/members/{member.public_id}/").json()
    assert body["card_number"] == member.card_number and body["points_pending"] == 0
    assert body["id"] == str(member.public_id)
    assert api.get(f"/members/{uuid.uuid4()}/").status_code == 404
    assert api.get(f"/members/{member.pk}/").status_code == 404  # the database key is no API id
    Member.objects.filter(pk=member.pk).update(status=Member.Status.ERASED)
    assert api.get(f"/members/{member.public_id}/").status_code == 404


def test_update_changes_allowed_fields_only(api, partner, member):
    factories.relate(member, partner)
    response = api.patch(f"/members/{member.public_id}/", {"city": "Köln", "phone": "+49 221 1234",
                                                           "language": "en"})
    assert response.status_code == 200, response.text
    member.refresh_from_db()
    assert (member.city, member.phone, member.language) == ("Köln", "+49 221 1234", "en")
    assert response.json()["city"] == "Köln"


def test_update_refuses_balance_tier_status_and_numbers(api, partner, member, tiers):
    factories.relate(member, partner)
    response = api.patch(f"/members/{member.public_id}/", {"points_balance": 10**6, "tier": tiers[3].pk,
                                                    "status": "blocked", "card_number": "1", "city": "Bonn"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"points_balance", "tier", "status", "card_number"}
    member.refresh_from_db()
    assert (member.points_balance, member.tier, member.status, member.city) == (0, tiers[0], "active", member.city)
    assert member.city != "Bonn"


def test_balance_shows_available_pending_tier_progress_expiring_and_discount(api, partner, member, tiers):
    # A credit booked 23 months and 20 days ago expires in about 10 days (24-month expiry).
    old = timezone.now() - relativedelta(months=settings.LOYALTY_POINTS_EXPIRY_MONTHS) + timedelta(days=10)
    purchase_record(member_id=member.pk, partner=partner, order_reference="OLD", amount=Decimal("120"),
                    occurred_at=timezone.now() - timedelta(days=300), booked_at=old)
    purchase_record(member_id=member.pk, partner=partner, order_reference="NEW", amount=Decimal("500"))
    body = api.get(f"/members/{member.public_id}/balance/").json()
    assert body["member_id"] == str(member.public_id)
    assert body["available"] == 620 and body["pending"] == 0
    assert body["tier"]["name"] == "Silver" and body["next_tier"]["name"] == "Gold"
    assert body["qualifying_points"] == 500  # the old credit is outside the 12-month window
    assert body["points_to_next_tier"] == 1500
    assert body["progress_percent"] == 0
    assert body["expiring_points"] == 120
    assert Decimal(body["discount_percent"]) == Decimal("2")


def test_ledger_entries_newest_first_with_a_kind_filter(api, partner, member):
    for n in range(3):
        purchase_record(member_id=member.pk, partner=partner, order_reference=f"L-{n}", amount=Decimal("10"))
    factories.PartnerAPIKeyFactory(partner=partner)
    entries = api.get(f"/members/{member.public_id}/entries/", params={"page_size": 2}).json()
    assert [row["reason"] for row in entries["results"]] == ["Purchase L-2", "Purchase L-1"]
    following = api.get(entries["next"]).json()
    assert [row["reason"] for row in following["results"]] == ["Purchase L-0"]
    assert api.get(f"/members/{member.public_id}/entries/", params={"kind": "redeem"}).json()["results"] == []
    assert api.get(f"/members/{member.public_id}/entries/", params={"kind": "nonsense"}).status_code == 400
