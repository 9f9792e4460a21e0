"""DSGVO in the portal: the data export (Art. 15/20) and erasure (Art. 17)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.urls import reverse

from members.erasure import member_erase
from members.gdpr import member_export_data
from members.merge import member_merge
from members.models import ConsentRecord, Member
from members.services import consent_record, member_link_or_enrol
from rewards.ledger import points_credit
from rewards.models import PointEntry, Purchase
from rewards.purchases import purchase_record
from rewards.selectors import ledger_mismatches
from rewards.vouchers import redemption_create
from tests import factories


@pytest.fixture
def portal_member(tiers):
    user = factories.UserFactory(email="erika@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    member = member_link_or_enrol(user=user, email=user.email)
    Member.objects.filter(pk=member.pk).update(first_name="Erika", last_name="Muster", phone="+49 30 1234567",
                                               street="Heidestraße 17", postal_code="51147", city="Köln",
                                               birth_date="1980-05-17")
    member.refresh_from_db()
    member.tags.add(factories.TagFactory(name="Stammkundin"))
    return member


def _recently_authenticated(client, user):
    """Sign in and confirm the password once more (allauth's reauthentication), as the delete
    page asks."""
    client.force_login(user)
    response = client.post(reverse("account_reauthenticate"), {"password": "correct-horse-battery"})
    assert response.status_code == 302


def test_export_contains_profile_ledger_purchases_vouchers_and_consents(client, portal_member, partner, base_rule):
    purchase_record(member_id=portal_member.pk, partner=partner, order_reference="BON-1", amount=Decimal("250.00"))
    voucher = redemption_create(member_id=portal_member.pk, reward_id=factories.RewardFactory(points_cost=100).pk)
    consent_record(member=portal_member, purpose="sms", granted=True, source="portal", text_version="2026-01",
                   ip_address="203.0.113.9")
    client.force_login(portal_member.user)
    response = client.get(reverse("portal:export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["profile"]["email"] == "erika@example.org" and data["profile"]["city"] == "Köln"
    assert data["profile"]["tags"] == ["Stammkundin"] and data["profile"]["points_balance"] == 150
    assert [entry["points"] for entry in data["ledger"]] == [250, -100]
    assert data["purchases"][0]["order_reference"] == "BON-1"
    assert data["purchases"][0]["breakdown"] == [{"kind": "base", "description": "1 Punkt pro Euro", "points": 250}]
    assert data["purchases"][0]["amount"] == "250.00"
    assert data["vouchers"][0]["code"] == voucher.display_code
    assert data["consents"][0]["ip_address"] == "203.0.113.9"
    assert data["tier_history"][0]["cause"] == "enrolment"
    assert data["referrals"] == [] and data["feedback"] == []


def test_export_includes_duplicates_merged_into_the_member(portal_member):
    duplicate = factories.enrolled_member(email="alt@example.org")
    points_credit(member_id=duplicate.pk, points=40, reason="Altkarte")
    member_merge(survivor_id=portal_member.pk, duplicate_id=duplicate.pk)
    data = member_export_data(Member.objects.get(pk=portal_member.pk))
    assert sum(entry["points"] for entry in data["ledger"]) == 40


def test_erasure_anonymises_keeps_the_ledger_and_removes_the_login(portal_member, partner, base_rule):
    purchase_record(member_id=portal_member.pk, partner=partner, order_reference="BON-1", amount=Decimal("80.00"))
    consent_record(member=portal_member, purpose="sms", granted=True, source="portal")
    card, customer, user_id = portal_member.card_number, portal_member.customer_number, portal_member.user_id

    erased = member_erase(member_id=portal_member.pk)

    assert erased.status == Member.Status.ERASED
    for field in ("email", "first_name", "last_name", "phone", "street", "postal_code", "city", "salutation"):
        assert getattr(erased, field) == "", field
    assert erased.birth_date is None and not erased.tags.exists()
    assert erased.card_number != card and erased.customer_number != customer
    assert erased.user_id is None and not get_user_model().objects.filter(pk=user_id).exists()
    assert not EmailAddress.objects.filter(user_id=user_id).exists()
    # The books still add up: the purchase stays, the points are forfeited by an entry.
    assert Purchase.objects.filter(member=erased, order_reference="BON-1").exists()
    assert erased.points_balance == 0
    assert list(PointEntry.objects.filter(member=erased).order_by("id").values_list("kind", "points")) == [
        ("earn", 80), ("adjust", -80)]
    assert ledger_mismatches() == []
    latest_sms = ConsentRecord.objects.filter(member=erased, purpose="sms").order_by("-id").first()
    assert latest_sms.granted is False


def test_erasing_twice_changes_nothing(portal_member):
    member_erase(member_id=portal_member.pk)
    entries = PointEntry.objects.count()
    again = member_erase(member_id=portal_member.pk)
    assert again.status == Member.Status.ERASED and PointEntry.objects.count() == entries


def test_erasure_ends_every_session_of_the_login(portal_member):
    from django.test import Client

    phone, laptop = Client(), Client()
    phone.force_login(portal_member.user)
    laptop.force_login(portal_member.user)
    other = factories.UserFactory()
    bystander = Client()
    bystander.force_login(other)
    assert Session.objects.count() == 3
    member_erase(member_id=portal_member.pk)
    assert Session.objects.count() == 1
    assert phone.get(reverse("portal:dashboard")).status_code == 302


def test_erasure_also_anonymises_duplicates_merged_into_the_member(portal_member):
    duplicate = factories.enrolled_member(email="alt@example.org", first_name="Erika", last_name="Alt")
    member_merge(survivor_id=portal_member.pk, duplicate_id=duplicate.pk)
    member_erase(member_id=portal_member.pk)
    duplicate.refresh_from_db()
    assert (duplicate.email, duplicate.last_name, duplicate.status) == ("", "", Member.Status.MERGED)


def test_deleting_my_account_asks_for_confirmation_then_erases_and_signs_out(client, portal_member):
    _recently_authenticated(client, portal_member.user)
    page = client.get(reverse("portal:delete"))
    assert page.status_code == 200 and 'name="confirm"' in page.content.decode()
    refused = client.post(reverse("portal:delete"), {})
    assert refused.status_code == 200
    assert Member.objects.get(pk=portal_member.pk).status == Member.Status.ACTIVE

    response = client.post(reverse("portal:delete"), {"confirm": "on"})
    assert response["Location"] == reverse("portal:home")
    assert Member.objects.get(pk=portal_member.pk).status == Member.Status.ERASED
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("portal:dashboard")).status_code == 302


def test_deleting_asks_for_the_password_again_after_a_while(client, portal_member):
    client.force_login(portal_member.user)  # no recent authentication recorded
    response = client.post(reverse("portal:delete"), {"confirm": "on"})
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert Member.objects.get(pk=portal_member.pk).status == Member.Status.ACTIVE
