"""One-click unsubscribe: a signed link in every e-mail; GET asks, POST withdraws the consent
(RFC 8058: also without a CSRF token); the next campaign skips the member."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from campaigns import links, services
from campaigns.models import Campaign, Message
from members.models import ConsentRecord, Member
from members.services import consent_given
from tests import factories


def consenting(**fields) -> Member:
    member = factories.enrolled_member(**fields)
    factories.ConsentRecordFactory(member=member, purpose="email")
    return member


def sent_message(member: Member) -> Message:
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_run_inline(campaign_id=campaign.pk)
    return Message.objects.get(campaign=campaign, member=member)


def unsubscribe_path(message: Message) -> str:
    return links.unsubscribe_url(message.pk).removeprefix("http://127.0.0.1:8000")


def test_get_shows_a_confirmation_and_changes_nothing(tiers, client):
    member = consenting(email="erika@example.org", language="de")
    message = sent_message(member)
    response = client.get(unsubscribe_path(message))
    assert response.status_code == 200
    assert "e***@example.org" in response.content.decode() and "erika@" not in response.content.decode()
    assert consent_given(member, "email")


def test_one_click_post_without_a_csrf_token_withdraws_the_consent(tiers):
    member = consenting()
    message = sent_message(member)
    client = Client(enforce_csrf_checks=True)
    response = client.post(unsubscribe_path(message), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    record = ConsentRecord.objects.filter(member=member, purpose="email").order_by("-created_at", "-id").first()
    assert (record.granted, record.source) == (False, ConsentRecord.Source.UNSUBSCRIBE)
    assert record.text_version == f"campaign:{message.campaign_id}"
    assert not consent_given(member, "email")
    message.refresh_from_db()
    assert message.unsubscribed_at is not None


def test_unsubscribing_twice_records_one_withdrawal(tiers, client):
    member = consenting()
    message = sent_message(member)
    client.post(unsubscribe_path(message))
    client.post(unsubscribe_path(message))
    assert ConsentRecord.objects.filter(member=member, granted=False).count() == 1


def test_the_next_campaign_skips_an_unsubscribed_member(tiers, client):
    member = consenting()
    client.post(unsubscribe_path(sent_message(member)))
    mail.outbox.clear()
    message = sent_message(member)
    assert message.skip_reason == Message.SkipReason.NO_CONSENT
    assert mail.outbox == []


def test_the_link_in_the_email_is_the_one_that_works(tiers, client):
    member = consenting()
    sent_message(member)
    url = mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    response = client.post(url.removeprefix("http://127.0.0.1:8000"))
    assert response.status_code == 200
    assert not consent_given(member, "email")


def test_an_sms_unsubscribe_withdraws_the_sms_consent(tiers, client):
    member = factories.enrolled_member(phone="+41 79 123 45 67")
    factories.ConsentRecordFactory(member=member, purpose="sms", confirmed_at=None)
    factories.ConsentRecordFactory(member=member, purpose="email")
    campaign = factories.CampaignFactory(channel=Campaign.Channel.SMS)
    factories.VariantFactory(campaign=campaign, body_de="{{ unsubscribe_url }}")
    services.campaign_launch(campaign_id=campaign.pk)
    services.campaign_run_inline(campaign_id=campaign.pk)
    message = Message.objects.get(campaign=campaign)
    client.post(unsubscribe_path(message))
    assert not consent_given(member, "sms")
    assert consent_given(member, "email")


@pytest.mark.parametrize("token", ["123", "123:forged-signature", "not-a-token"])
def test_a_forged_or_broken_link_does_nothing(tiers, client, token):
    member = consenting()
    sent_message(member)
    response = client.post(f"/c/u/{token}/")
    assert response.status_code == 404
    assert consent_given(member, "email")


def test_a_raffle_link_is_no_unsubscribe_link(tiers, client):
    member = consenting()
    message = sent_message(member)
    token = links.message_token(message.pk, links.RAFFLE)
    assert client.post(f"/c/u/{token}/").status_code == 404
    assert consent_given(member, "email")
