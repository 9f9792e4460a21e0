"""Partner API: a member's challenges and badges, read-only, reached like the balance."""

from __future__ import annotations

import pytest

from engagement.engine import badge_award
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_related_member_s_challenges_show_progress_and_completions(api, partner, member, buy):
    running = factories.ChallengeFactory(name_en="Three visits", target=3)
    done = factories.ChallengeFactory(name_en="First visit", target=1)
    buy(member, "API-1")  # relates the member to the partner
    body = api.get(f"/members/{member.public_id}/challenges/").json()
    assert [(c["name"], c["value"], c["percent"]) for c in body["running"]] == [("Three visits", "1.00", 33)]
    assert [(c["id"], c["completed_at"] is not None, c["rewarded"]) for c in body["completed"]] == [
        (done.pk, True, True)]
    assert body["running"][0]["id"] == running.pk and body["running"][0]["goal"] == "purchases"


def test_badges_list_name_picture_and_date(api, partner, member):
    factories.relate(member, partner)
    badge = factories.BadgeFactory(name_en="Early bird", picture="leaf")
    badge_award(member_id=member.pk, badge_id=badge.pk)
    body = api.get(f"/members/{member.public_id}/badges/").json()
    assert [(b["id"], b["name"], b["picture"]) for b in body] == [(badge.pk, "Early bird", "leaf")]


def test_an_unrelated_member_is_reached_only_when_present(api, member):
    factories.ChallengeFactory()
    assert api.get(f"/members/{member.public_id}/challenges/").status_code == 404
    assert api.get(f"/members/{member.public_id}/badges/").status_code == 404
    present = api.get(f"/members/{member.public_id}/challenges/", params={"card_number": member.card_number})
    assert present.status_code == 200 and len(present.json()["running"]) == 1


def test_reading_challenges_needs_the_members_read_scope(api, partner, member):
    factories.relate(member, partner)
    key = factories.PartnerAPIKeyFactory(partner=partner, scopes=["purchases:write"]).raw_key
    assert api.with_key(key).get(f"/members/{member.public_id}/challenges/").status_code == 403
