"""Referrals in the partner API: attach a code after enrolment, read a member's referrals and code."""

from __future__ import annotations

import pytest

from referrals import services
from referrals.models import Referral
from tests import factories


@pytest.fixture
def program(tiers):
    return factories.ReferralProgramFactory()


@pytest.fixture
def anna(program, partner):
    return factories.relate(factories.enrolled_member(first_name="Anna", last_name="Berger"), partner)


def known(api, **fields):
    """A member the calling partner knows (enrolled there): reachable by their API id."""
    return factories.relate(factories.enrolled_member(**fields), api.partner)


def test_a_till_enrols_a_member_and_attaches_the_friends_code(api, anna):
    code = factories.referral_code(anna)
    member_id = api.post("/members/", {"email": "neu@example.org", "first_name": "Nina", "last_name": "Neu"}
                         ).json()["id"]
    response = api.post(f"/members/{member_id}/referrals/", {"code": code.lower()})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["role"] == "referee" and body["referrer_id"] == str(anna.public_id) and body["referee_id"] == member_id
    assert body["status"] == "pending" and body["channel"] == "api" and body["in_review"] is False
    assert body["friend"] == "Anna B."
    referral = Referral.objects.get()
    assert str(referral.referee.public_id) == member_id and referral.channel == Referral.Channel.API


def test_attaching_is_idempotent_by_key(api, anna):
    member = known(api)
    code = factories.referral_code(anna)
    first = api.post(f"/members/{member.public_id}/referrals/", {"code": code}, idempotency_key="ref-key-0001")
    again = api.post(f"/members/{member.public_id}/referrals/", {"code": code}, idempotency_key="ref-key-0001")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json() and Referral.objects.count() == 1


def test_an_unknown_code_is_a_422_in_the_api_error_shape(api, anna):
    member = known(api)
    response = api.post(f"/members/{member.public_id}/referrals/", {"code": "ZZZZ2345"})
    assert response.status_code == 422
    assert response.json()["code"] == "referral_code_invalid"


def test_a_member_referred_by_someone_else_is_refused(api, anna):
    member = known(api)
    other = factories.enrolled_member()
    services.referral_attach(referee_id=member.pk, code=factories.referral_code(other), channel="api")
    response = api.post(f"/members/{member.public_id}/referrals/", {"code": factories.referral_code(anna)})
    assert response.status_code == 422 and response.json()["code"] == "referral_not_allowed"


def test_unknown_fields_and_members_are_refused(api, anna):
    member = known(api)
    response = api.post(f"/members/{member.public_id}/referrals/",
                        {"code": factories.referral_code(anna), "status": "x"})
    assert response.status_code == 400
    assert api.post("/members/999999/referrals/", {"code": factories.referral_code(anna)}).status_code == 404
    stranger = factories.enrolled_member()  # not known to the partner: as if there were none
    assert api.post(f"/members/{stranger.public_id}/referrals/",
                    {"code": factories.referral_code(anna)}).status_code == 404


def test_a_long_standing_member_attached_later_is_flagged_for_review(api, anna):
    from datetime import timedelta

    from django.utils import timezone

    from members.models import Member

    member = known(api)
    Member.objects.filter(pk=member.pk).update(joined_at=timezone.now() - timedelta(days=400))
    body = api.post(f"/members/{member.public_id}/referrals/", {"code": factories.referral_code(anna)}).json()
    assert body["in_review"] is True


def test_reading_a_members_referrals_both_ways(api, anna):
    friends = [known(api, first_name="Ben", last_name="Schulz"), known(api)]
    for friend in friends:
        services.referral_attach(referee_id=friend.pk, code=factories.referral_code(anna), channel="api")
    response = api.get(f"/members/{anna.public_id}/referrals/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["referee_id"] for row in results] == [str(friends[1].public_id), str(friends[0].public_id)]
    assert {row["role"] for row in results} == {"referrer"}
    assert results[1]["friend"] == "Ben S."
    received = api.get(f"/members/{friends[0].public_id}/referrals/").json()["results"]
    assert [(row["role"], row["friend"]) for row in received] == [("referee", "Anna B.")]


def test_a_members_own_code_and_share_link(api, anna, settings):
    settings.LOYALTY_PUBLIC_URL = "https://treuepunkt.example"
    body = api.get(f"/members/{anna.public_id}/referrals/code/").json()
    code = factories.referral_code(anna)
    assert body == {"code": code, "share_url": f"https://treuepunkt.example/r/{code}"}


def test_scopes_are_the_members_ones(api, anna, partner):
    read_only = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=["members:read"]).raw_key,
                             partner=partner)
    member = known(api)
    assert read_only.get(f"/members/{anna.public_id}/referrals/").status_code == 200
    response = read_only.post(f"/members/{member.public_id}/referrals/", {"code": factories.referral_code(anna)})
    assert response.status_code == 403
    nothing = api.with_key(factories.PartnerAPIKeyFactory(partner=partner, scopes=["rewards:read"]).raw_key,
                           partner=partner)
    assert nothing.get(f"/members/{anna.public_id}/referrals/").status_code == 403
