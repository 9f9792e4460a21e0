"""A raffle's text must carry the entry link {{ raffle_url }}: the console refuses to save it
without, the start refuses it, and every member's message gets a link signed for them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from campaigns import links, rendering, services
from campaigns.errors import CampaignNotReady
from campaigns.models import Campaign, Message, Variant
from campaigns.sms import outbox as sms_outbox
from tests import factories
from tests.campaigns.test_campaigns_admin import inline_data

MISSING = "a raffle&#x27;s text must contain the entry link {{ raffle_url }}"


@pytest.fixture
def staff_client(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def raffle_form(body_de: str, body_en: str = "", **fields) -> dict:
    deadline = timezone.localtime(timezone.now() + timedelta(days=5))
    return {
        "name": "Verlosung", "kind": "raffle", "channel": "email", "holdout_percent": "0", "attribution_days": "14",
        "entry_points": "0", "winners_count": "1", "entry_deadline_0": deadline.strftime("%Y-%m-%d"),
        "entry_deadline_1": deadline.strftime("%H:%M:%S"), **fields,
        **inline_data([{"name": "A", "weight": "1", "subject_de": "Gewinnen", "body_de": body_de,
                        "subject_en": "", "body_en": body_en}], prefix="variants"),
    }


def test_the_console_refuses_a_raffle_text_without_the_entry_link(staff_client, tiers):
    response = staff_client.post(reverse("admin:campaigns_campaign_add"), raffle_form("Jetzt mitmachen!"))
    assert response.status_code == 200
    assert MISSING in response.content.decode()
    assert not Campaign.objects.filter(name="Verlosung").exists()


def test_the_english_text_needs_the_link_too_unless_it_is_empty(staff_client, tiers):
    response = staff_client.post(reverse("admin:campaigns_campaign_add"),
                                 raffle_form("Los: {{ raffle_url }}", "Take part now!"))
    assert response.status_code == 200 and MISSING in response.content.decode()
    response = staff_client.post(reverse("admin:campaigns_campaign_add"), raffle_form("Los: {{ raffle_url }}"))
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Verlosung")
    assert campaign.variants.get().body_de == "Los: {{ raffle_url }}"


def test_a_raffle_without_an_entry_deadline_cannot_be_saved(staff_client, tiers):
    form = raffle_form("Los: {{ raffle_url }}", entry_deadline_0="", entry_deadline_1="")
    response = staff_client.post(reverse("admin:campaigns_campaign_add"), form)
    assert response.status_code == 200 and "A raffle needs an entry deadline" in response.content.decode()


def test_a_broadcast_needs_no_entry_link(staff_client, tiers):
    response = staff_client.post(reverse("admin:campaigns_campaign_add"),
                                 raffle_form("Hallo {{ first_name }}", kind="broadcast"))
    assert response.status_code == 302


@pytest.mark.parametrize("text", [
    "Jetzt mitmachen!",
    "{# {{ raffle_url }} #}Mitmachen!",
    "{% comment %}{{ raffle_url }}{% endcomment %}",
    "{% if balance > 100000 %}{{ raffle_url }}{% endif %}",
    "{{ raffle_url|upper }}",
    "{{ raffle_url|truncatechars:10 }}",
    "{{ raffle_entry_points }}",
])
def test_a_link_that_does_not_reach_the_member_unchanged_does_not_count(text):
    assert not rendering.shows_value(text, rendering.RAFFLE_LINK)


@pytest.mark.parametrize("text", [
    "{{ raffle_url }}",
    "Hallo {{ first_name }},\nhier geht's zur Verlosung: {{ raffle_url }}",
    "{% if balance %}{{ raffle_url }}{% else %}{{ raffle_url }}{% endif %}",
])
def test_the_entry_link_counts_where_it_is_shown(text):
    assert rendering.shows_value(text, rendering.RAFFLE_LINK)


def test_starting_a_raffle_without_the_link_is_refused_with_a_clear_message(tiers):
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, entry_deadline=timezone.now() + timedelta(days=3))
    Variant.objects.create(campaign=campaign, name="A", body_de="Jetzt mitmachen!")
    with pytest.raises(CampaignNotReady, match=r"variant A: a raffle's text must contain the entry link"):
        services.campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and campaign.draw_seed_hash == ""


def test_each_member_gets_an_entry_link_signed_for_their_own_message(tiers):
    members = [factories.enrolled_member() for _ in range(2)]
    for member in members:
        factories.ConsentRecordFactory(member=member, purpose="email")
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, entry_deadline=timezone.now() + timedelta(days=3))
    factories.VariantFactory(campaign=campaign, body_de="Los: {{ raffle_url }}", body_en="")
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    services.campaign_run_inline(campaign_id=campaign.pk)
    by_address = {email.to[0]: email.body for email in mail.outbox}
    tokens = set()
    for member in members:
        message = Message.objects.get(campaign=campaign, member=member)
        url = links.raffle_url(message.pk)
        assert url in by_address[member.email]
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert links.message_id_from_token(token, links.RAFFLE) == message.pk
        tokens.add(token)
    assert len(tokens) == 2


def test_an_sms_raffle_carries_the_link_too(tiers):
    member = factories.enrolled_member(phone="+491701234567")
    factories.ConsentRecordFactory(member=member, purpose="sms")
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, channel=Campaign.Channel.SMS,
                                         entry_deadline=timezone.now() + timedelta(days=3))
    factories.VariantFactory(campaign=campaign, body_de="Verlosung: {{ raffle_url }}", body_en="")
    sms_outbox.clear()
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    services.campaign_run_inline(campaign_id=campaign.pk)
    message = Message.objects.get(campaign=campaign)
    assert [sms.body for sms in sms_outbox] == [f"Verlosung: {links.raffle_url(message.pk)}"]


def test_a_text_that_hides_the_link_from_one_member_fails_that_message(tiers):
    """Checked with sample values on save; a condition on the member's own data can still hide
    it, and an invitation without its link is recorded as failed rather than sent."""
    rich, poor = factories.enrolled_member(), factories.enrolled_member()
    for member in (rich, poor):
        factories.ConsentRecordFactory(member=member, purpose="email")
    from rewards.ledger import points_adjust

    points_adjust(member_id=rich.pk, points=1500, reason="Test", staff_user=None)
    campaign = factories.CampaignFactory(kind=Campaign.Kind.RAFFLE, entry_deadline=timezone.now() + timedelta(days=3))
    factories.VariantFactory(campaign=campaign, body_de="{% if balance > 1000 %}{{ raffle_url }}{% endif %}",
                             body_en="")
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)  # the sample balance is 1250
    services.campaign_run_inline(campaign_id=campaign.pk)
    statuses = dict(Message.objects.filter(campaign=campaign).values_list("member_id", "status"))
    assert statuses == {rich.pk: Message.Status.SENT, poor.pk: Message.Status.FAILED}
    assert [email.to[0] for email in mail.outbox] == [rich.email]
