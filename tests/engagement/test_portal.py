"""The member portal: the challenges page and the dashboard card, in German and English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from engagement.engine import badge_award
from members.services import member_link_or_enrol
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal_member(tiers, client):
    user = factories.UserFactory(email="lena@example.org")
    member = member_link_or_enrol(user=user, email="lena@example.org")
    client.force_login(user)
    return member


def test_the_challenges_page_shows_progress_bars_completed_challenges_and_badges(client, portal_member, buy):
    badge = factories.BadgeFactory(name_de="Stammkunde", name_en="Regular", picture="trophy")
    factories.ChallengeFactory(name_de="Drei Einkäufe", target=3, badge=badge)
    factories.ChallengeFactory(name_de="Erster Einkauf", target=1, reward_points=50)
    buy(portal_member, "PP-1")
    page = client.get(reverse("engagement:portal")).content.decode()
    assert "Drei Einkäufe" in page and 'role="progressbar"' in page and 'aria-valuenow="33"' in page
    assert "1 of 3" in page
    assert "Erster Einkauf" in page and "completed on" in page
    assert "weekly streak" in page.lower()
    buy(portal_member, "PP-2")
    buy(portal_member, "PP-3")
    page = client.get(reverse("engagement:portal")).content.decode()
    assert "Stammkunde" in page and "/static/engagement/badges/trophy" in page


def test_the_page_shows_the_english_names_in_english(client, portal_member, buy):
    factories.ChallengeFactory(name_de="Drei Einkäufe", name_en="Three visits", target=3)
    buy(portal_member, "EN-1")
    page = client.get("/en" + reverse("engagement:portal")).content.decode()
    assert "Three visits" in page and "Drei Einkäufe" not in page and "Shop 3 times." in page
    assert "How it works" in page


def test_members_see_only_challenges_of_their_audience_and_their_own_progress(client, portal_member, buy):
    segment = factories.SegmentFactory()
    factories.SegmentConditionFactory(segment=segment, field="country", operator="in", value="AT")
    factories.ChallengeFactory(name_de="Nur Österreich", segment=segment)
    factories.ChallengeFactory(name_de="Für alle", target=5)
    buy(factories.enrolled_member(), "OTHER-1")
    page = client.get(reverse("engagement:portal")).content.decode()
    assert "Nur Österreich" not in page and "Für alle" in page and "0 of 5" in page


def test_ended_challenges_are_not_running(client, portal_member):
    now = timezone.now()
    factories.ChallengeFactory(name_de="Vorbei", starts_at=now - timedelta(days=10), ends_at=now - timedelta(days=1))
    assert "Vorbei" not in client.get(reverse("engagement:portal")).content.decode()


def test_the_dashboard_card_shows_streak_badges_and_top_challenges(client, portal_member, buy):
    badge = factories.BadgeFactory(name_de="Entdecker")
    badge_award(member_id=portal_member.pk, badge_id=badge.pk)
    for n in range(4):
        factories.ChallengeFactory(name_de=f"Aufgabe {n}", target=10 + n)
    buy(portal_member, "D-1")
    page = client.get(reverse("portal:dashboard")).content.decode()
    assert 'data-testid="engagement-card"' in page
    assert 'alt="Entdecker"' in page
    assert "Weekly streak: <strong>1 week</strong> in a row" in page
    assert page.count('data-testid="challenge"') == 3 and "1 more challenge" in page


def test_the_navigation_links_the_challenges_page(client, portal_member):
    page = client.get(reverse("portal:dashboard")).content.decode()
    assert reverse("engagement:portal") in page


def test_staff_do_not_see_a_member_page(client, tiers):
    client.force_login(factories.StaffUserFactory())
    assert client.get(reverse("engagement:portal")).status_code == 403


def test_the_data_export_lists_challenge_progress_and_badges(portal_member, buy):
    from members.gdpr import member_export_data

    badge = factories.BadgeFactory(name_de="Erster Schritt")
    factories.ChallengeFactory(name_de="Einmal einkaufen", target=1, badge=badge)
    buy(portal_member, "GDPR-1")
    data = member_export_data(portal_member)
    assert [row["challenge"] for row in data["challenges"]["progress"]] == ["Einmal einkaufen"]
    assert [row["badge"] for row in data["challenges"]["badges"]] == ["Erster Schritt"]
