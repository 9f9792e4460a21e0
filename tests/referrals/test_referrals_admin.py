"""The referrals console: review queue, approve / reject behind a confirmation, codes entered by
staff, programme figures without a query per row, and who may do what."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from referrals import services
from referrals.models import Referral
from rewards.models import PointEntry
from rewards.purchases import purchase_record
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return factories.UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def program(tiers):
    return factories.ReferralProgramFactory(name_de="Freunde 2026")


@pytest.fixture
def referrer(program):
    return factories.enrolled_member(first_name="Anna", last_name="Berger", phone="+49 30 1234567")


def flagged_referral(referrer, partner=None) -> Referral:
    """Same phone: waits for review. Qualified, with the hold period over."""
    referee = factories.enrolled_member(phone="030 1234567")
    referral = services.referral_attach(referee_id=referee.pk, code=factories.referral_code(referrer), channel="api")
    if partner is not None:
        purchase_record(member_id=referee.pk, partner=partner, order_reference=f"Q-{referee.pk}",
                        amount=Decimal("30"))
        Referral.objects.filter(pk=referral.pk).update(payable_at=timezone.now() - timedelta(minutes=1))
    return referral


def test_the_review_queue_lists_flagged_referrals_only(staff_client, referrer):
    waiting = flagged_referral(referrer)
    clean = services.referral_attach(referee_id=factories.enrolled_member().pk,
                                     code=factories.referral_code(referrer), channel="api")
    url = reverse("admin:referrals_referral_changelist")
    page = staff_client.get(url, {"review": "waiting"}).content.decode()
    assert reverse("admin:referrals_referral_change", args=[waiting.pk]) in page
    assert reverse("admin:referrals_referral_change", args=[clean.pk]) not in page
    assert staff_client.get(url, {"status": "pending"}).status_code == 200
    detail = staff_client.get(reverse("admin:referrals_referral_change", args=[waiting.pk])).content.decode()
    assert "same phone number" in detail


def test_approving_asks_first_and_then_pays(staff_client, referrer, partner):
    referral = flagged_referral(referrer, partner)
    url = reverse("admin:referrals_referral_review", args=[referral.pk, "approve"])
    page = staff_client.get(url).content.decode()
    assert "Approve referral" in page and "same phone number" in page
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED  # a GET changes nothing
    response = staff_client.post(url)
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REWARDED and referral.reviewed_by is not None
    assert PointEntry.objects.filter(source="referral").count() == 2


def test_rejecting_needs_a_reason(staff_client, referrer):
    referral = flagged_referral(referrer)
    url = reverse("admin:referrals_referral_review", args=[referral.pk, "reject"])
    response = staff_client.post(url, {"reason": ""})
    assert response.status_code == 200
    referral.refresh_from_db()
    assert referral.status == Referral.Status.PENDING
    staff_client.post(url, {"reason": "Gleicher Haushalt"})
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REJECTED and referral.reject_reason == "Gleicher Haushalt"


def test_a_closed_referral_cannot_be_approved(staff_client, referrer):
    referral = flagged_referral(referrer)
    services.referral_reject(referral_id=referral.pk, reason="no", staff_user=None)
    response = staff_client.post(reverse("admin:referrals_referral_review", args=[referral.pk, "approve"]),
                                 follow=True)
    assert "cannot be changed" in response.content.decode()


def test_staff_enter_a_forgotten_code(staff_client, referrer):
    friend = factories.enrolled_member()
    url = reverse("admin:referrals_referral_enter")
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(url, {"member": friend.card_number, "code": factories.referral_code(referrer)})
    assert response.status_code == 302
    referral = Referral.objects.get(referee=friend)
    assert referral.channel == Referral.Channel.STAFF and referral.created_by is not None
    again = staff_client.post(url, {"member": friend.customer_number, "code": "WRONG234"})
    assert "This referral code is not valid." in again.content.decode()


def test_referrals_are_not_editable_by_hand(staff_client, referrer):
    referral = flagged_referral(referrer)
    assert staff_client.get(reverse("admin:referrals_referral_add")).status_code == 403
    staff_client.post(reverse("admin:referrals_referral_change", args=[referral.pk]), {"status": "rewarded"})
    referral.refresh_from_db()
    assert referral.status == Referral.Status.PENDING


def test_programme_figures_and_top_referrers(staff_client, program, referrer, partner, django_assert_max_num_queries):
    other = factories.enrolled_member(first_name="Otto", last_name="Oft")
    friends = []
    for index in range(3):
        friend = factories.enrolled_member()
        friends.append(friend)
        services.referral_attach(referee_id=friend.pk, code=factories.referral_code(referrer if index else other),
                                 channel="api")
    purchase_record(member_id=friends[1].pk, partner=partner, order_reference="T-1", amount=Decimal("30"))
    referral = Referral.objects.get(referee=friends[1])
    services.referral_pay(referral_id=referral.pk, now=timezone.now() + timedelta(days=15))

    page = staff_client.get(reverse("admin:referrals_referralprogram_change", args=[program.pk])).content.decode()
    assert 'data-stat="referrals">3<' in page
    assert 'data-stat="conversion">33.3 %<' in page or 'data-stat="conversion">33,3 %<' in page
    assert 'data-stat="rewarded">1<' in page and 'data-stat="points">750<' in page
    assert page.index("Anna Berger") < page.index("Otto Oft")  # the rewarded referrer first

    for _ in range(5):
        factories.ReferralProgramFactory(active=False)
    url = reverse("admin:referrals_referralprogram_changelist")
    staff_client.get(url)
    with django_assert_max_num_queries(12):  # fixed, whatever the number of programmes
        listing = staff_client.get(url).content.decode()
    assert "Freunde 2026" in listing


def test_support_reviews_and_marketing_manages_programmes(client, referrer):
    from core.roles import ensure_group_permissions

    ensure_group_permissions()
    referral = flagged_referral(referrer)
    support = factories.staff_in("Support")
    marketing = factories.staff_in("Marketing")
    assert support.has_perm("referrals.review_referral") and support.has_perm("referrals.add_referral")
    assert not support.has_perm("referrals.change_referralprogram")
    assert marketing.has_perm("referrals.change_referralprogram") and marketing.has_perm("referrals.view_referral")
    assert not marketing.has_perm("referrals.review_referral")

    client.force_login(marketing)
    url = reverse("admin:referrals_referral_review", args=[referral.pk, "approve"])
    assert client.post(url).status_code == 403
    client.force_login(support)
    assert client.post(url).status_code == 302
    referral.refresh_from_db()
    assert referral.reviewed_at is not None
