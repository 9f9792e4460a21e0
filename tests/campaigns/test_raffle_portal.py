"""Raffles in the member portal: the open raffles of the member's audience on the dashboard and
on their own page, entering with one POST (in the member's own name, once, with CSRF), and why
a closed or foreign raffle can't be entered."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import raffles, services
from campaigns.models import Campaign, RaffleEntry
from members.models import Member
from members.services import member_link_or_enrol
from rewards.ledger import points_adjust
from rewards.models import PointEntry
from rewards.selectors import ledger_mismatches
from tests import factories
from tests.rewards.test_ledger_concurrency import run_in_threads

_logins = itertools.count(1)


def open_raffle(*, name: str = "Kaffeemaschine", entry_points: int = 0, segment=None,
                deadline_in: timedelta = timedelta(days=5), **fields) -> Campaign:
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, name=name, entry_points=entry_points,
                                         segment=segment, entry_deadline=timezone.now() + deadline_in, **fields)
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    campaign.refresh_from_db()
    return campaign


def signed_in(client, *, points: int = 0, **fields) -> Member:
    user = factories.UserFactory(email=f"portal{next(_logins)}@example.org")
    member = member_link_or_enrol(user=user, email=user.email)
    if fields:
        Member.objects.filter(pk=member.pk).update(**fields)
    if points:
        points_adjust(member_id=member.pk, points=points, reason="Test", staff_user=None)
    member.refresh_from_db()
    client.force_login(user)
    return member


def enter_url(campaign: Campaign) -> str:
    return reverse("raffles:enter", args=[campaign.pk])


def test_the_dashboard_shows_an_open_raffle_with_its_seed_hash_and_a_button(client, tiers):
    member = signed_in(client)
    campaign = open_raffle()
    page = client.get(reverse("portal:dashboard")).content.decode()
    assert 'data-testid="raffles-card"' in page and "Kaffeemaschine" in page
    assert campaign.draw_seed_hash in page and campaign.draw_seed not in page
    assert f'action="{enter_url(campaign)}"' in page
    assert member.pk


def test_a_member_outside_the_audience_does_not_see_the_raffle(client, tiers):
    signed_in(client, country="DE")
    austria = factories.SegmentConditionFactory(field="country", operator="in", value="AT").segment
    open_raffle(name="Nur Österreich", segment=austria)
    page = client.get(reverse("raffles:portal")).content.decode()
    assert "Nur Österreich" not in page
    assert 'data-testid="raffles-card"' not in client.get(reverse("portal:dashboard")).content.decode()


def test_entering_from_the_portal_takes_one_post_and_is_idempotent(client, tiers):
    member = signed_in(client, points=200)
    campaign = open_raffle(entry_points=50)
    response = client.post(enter_url(campaign), follow=True)
    entry = RaffleEntry.objects.get()
    assert (entry.member_id, entry.campaign_id, entry.points_paid) == (member.pk, campaign.pk, 50)
    page = response.content.decode()
    assert f"with ticket {entry.ticket}. Good luck!" in page
    assert 'data-testid="raffle-entered"' in page
    response = client.post(enter_url(campaign), follow=True)
    assert "You are already taking part" in response.content.decode()
    assert RaffleEntry.objects.count() == 1
    member.refresh_from_db()
    assert member.points_balance == 150
    assert PointEntry.objects.filter(member=member, source="raffle").count() == 1


def test_entering_from_the_dashboard_comes_back_to_the_dashboard(client, tiers):
    signed_in(client)
    campaign = open_raffle()
    response = client.post(enter_url(campaign), {"next": "dashboard"})
    assert response["Location"] == reverse("portal:dashboard")


def test_a_member_enters_only_in_their_own_name(client, tiers):
    """No member id in the URL or the form: a posted one is ignored."""
    other = factories.enrolled_member()
    member = signed_in(client)
    campaign = open_raffle()
    client.post(enter_url(campaign), {"member": other.pk, "member_id": other.pk})
    assert list(RaffleEntry.objects.values_list("member_id", flat=True)) == [member.pk]
    page = client.get(reverse("raffles:portal")).content.decode()
    assert page.count('data-testid="raffle-entry"') == 1


def test_the_raffles_page_shows_only_the_members_own_tickets(client, tiers):
    campaign = open_raffle(name="Espressomaschine")
    other = factories.enrolled_member()
    raffles.raffle_enter(campaign_id=campaign.pk, member_id=other.pk)
    signed_in(client)
    page = client.get(reverse("raffles:portal")).content.decode()
    assert 'data-testid="raffle-entry"' not in page
    assert "You have not taken part in a raffle yet." in page


def test_entering_needs_the_csrf_token_and_a_post(tiers):
    client = Client(enforce_csrf_checks=True)
    signed_in(client)
    campaign = open_raffle()
    assert client.post(enter_url(campaign)).status_code == 403
    assert client.get(enter_url(campaign)).status_code == 405
    assert not RaffleEntry.objects.exists()
    page = client.get(reverse("raffles:portal"))
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else client.cookies["csrftoken"].value
    assert client.post(enter_url(campaign), {"csrfmiddlewaretoken": token}).status_code == 302
    assert RaffleEntry.objects.count() == 1


def test_a_closed_raffle_explains_why_it_takes_no_entry(client, tiers):
    signed_in(client)
    campaign = open_raffle(deadline_in=timedelta(seconds=1))
    Campaign.objects.filter(pk=campaign.pk).update(entry_deadline=timezone.now() - timedelta(minutes=1))
    response = client.post(enter_url(campaign), follow=True)
    assert "This raffle is not open for entries: the entry period has ended" in response.content.decode()
    assert not RaffleEntry.objects.exists()
    assert "Kaffeemaschine" not in client.get(reverse("raffles:portal")).content.decode()


def test_a_raffle_for_another_audience_explains_why(client, tiers):
    signed_in(client, country="DE")
    austria = factories.SegmentConditionFactory(field="country", operator="in", value="AT").segment
    campaign = open_raffle(segment=austria)
    response = client.post(enter_url(campaign), follow=True)
    assert "this raffle is for invited members" in response.content.decode()
    assert not RaffleEntry.objects.exists()


def test_too_few_points_are_explained_before_and_after_a_try(client, tiers):
    signed_in(client, points=10)
    campaign = open_raffle(entry_points=50)
    page = client.get(reverse("raffles:portal")).content.decode()
    assert "You need 50 points to take part." in page and f'action="{enter_url(campaign)}"' not in page
    response = client.post(enter_url(campaign), follow=True)
    assert "message--error" in response.content.decode()
    assert not RaffleEntry.objects.exists()


def test_a_draft_or_broadcast_is_no_raffle_to_enter(client, tiers):
    signed_in(client)
    broadcast = factories.CampaignFactory()
    assert client.post(enter_url(broadcast)).status_code == 404
    draft = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, entry_deadline=timezone.now() + timedelta(days=1))
    response = client.post(enter_url(draft), follow=True)
    assert "the raffle has not started" in response.content.decode()


def test_staff_and_anonymous_visitors_cannot_enter(client, tiers):
    campaign = open_raffle()
    response = client.post(enter_url(campaign))
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(factories.StaffUserFactory())
    assert client.post(enter_url(campaign)).status_code == 403
    assert not RaffleEntry.objects.exists()


def test_a_win_shows_on_the_dashboard_and_the_raffles_page(client, tiers):
    member = signed_in(client)
    prize = factories.RewardFactory(name_de="Kaffeemaschine", in_catalogue=False)
    campaign = open_raffle(prize=prize)
    raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
    raffles.raffle_draw(campaign_id=campaign.pk, now=campaign.entry_deadline + timedelta(minutes=1))
    entry = RaffleEntry.objects.get(member=member)
    dashboard = client.get(reverse("portal:dashboard")).content.decode()
    assert 'data-testid="raffle-win"' in dashboard
    assert reverse("portal:voucher", args=[entry.prize_id]) in dashboard
    page = client.get(reverse("raffles:portal")).content.decode()
    assert "You won!" in page and str(entry.ticket) in page


def test_the_raffles_page_in_english(client, tiers):
    signed_in(client)
    open_raffle()
    page = client.get("/en" + reverse("raffles:portal")).content.decode()
    assert "Open raffles" in page and "Take part" in page


def test_the_portal_needs_the_same_queries_for_one_raffle_or_many(client, tiers):
    member = signed_in(client)
    segment = factories.SegmentConditionFactory(field="country", operator="in", value="DE,AT").segment
    raffles.raffle_enter(campaign_id=open_raffle(name="Erste", segment=segment).pk, member_id=member.pk)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("raffles:portal")).status_code == 200
        return len(captured)

    one = queries()
    for index in range(4):
        campaign = open_raffle(name=f"Weitere {index}", segment=segment)
        raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk)
    assert queries() == one


@pytest.mark.django_db(transaction=True)
def test_a_double_click_from_two_tabs_enters_once_and_pays_once():
    factories.tier_ladder()
    member = factories.enrolled_member()
    points_adjust(member_id=member.pk, points=100, reason="Test", staff_user=None)
    campaign = open_raffle(entry_points=30)
    outcomes = run_in_threads(8, lambda index: raffles.raffle_enter(campaign_id=campaign.pk, member_id=member.pk))
    assert outcomes == [None] * 8
    assert RaffleEntry.objects.count() == 1
    member.refresh_from_db()
    assert member.points_balance == 70
    assert ledger_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_many_members_entering_at_once_each_get_one_ticket():
    factories.tier_ladder()
    members = [factories.enrolled_member() for _ in range(12)]
    campaign = open_raffle()
    outcomes = run_in_threads(12, lambda index: raffles.raffle_enter(campaign_id=campaign.pk,
                                                                     member_id=members[index].pk))
    assert outcomes == [None] * 12
    assert sorted(RaffleEntry.objects.values_list("member_id", flat=True)) == sorted(m.pk for m in members)
