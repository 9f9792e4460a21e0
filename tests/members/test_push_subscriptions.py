"""The push switch's endpoints: a device subscribes (PUSH consent granted with it) and
unsubscribes (consent withdrawn with the last device), only the member's own device, CSRF
required, and endpoints that would make our workers post into our own network refused."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.urls import reverse

from members.models import ConsentRecord, PushSubscription
from members.push import vapid_keys_generate
from members.services import consent_record, member_link_or_enrol
from tests import factories

PUSH = ConsentRecord.Purpose.PUSH
SUBSCRIBE, UNSUBSCRIBE = reverse("portal:push_subscribe"), reverse("portal:push_unsubscribe")


def device_keys() -> dict[str, str]:
    """What a browser's PushSubscription.toJSON() carries as keys: a P-256 public key and 16 bytes."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return {"p256dh": encode(public), "auth": encode(b"0123456789abcdef")}


def subscription(endpoint: str = "https://push.example.net/send/device-1") -> dict:
    return {"endpoint": endpoint, "expirationTime": None, "keys": device_keys()}


@pytest.fixture
def vapid(settings, fake_dns):
    for name, value in vapid_keys_generate().items():
        setattr(settings, name, value)
    settings.LOYALTY_WEBPUSH_VAPID_SUBJECT = "mailto:technik@treuepunkt.example"
    fake_dns["push.example.net"] = ["93.184.215.14"]
    fake_dns["evil.example.net"] = ["10.0.0.5"]
    fake_dns["mixed.example.net"] = ["93.184.215.14", "192.168.1.10"]
    return settings


def portal_member(email: str):
    return member_link_or_enrol(user=factories.UserFactory(email=email), email=email)


@pytest.fixture
def anna(tiers):
    return portal_member("anna@example.org")


def post(client: Client, url: str, data) -> tuple[int, dict]:
    response = client.post(url, data=json.dumps(data), content_type="application/json")
    return response.status_code, (response.json() if response["Content-Type"].startswith("application/json") else {})


def push_consents(member) -> list[bool]:
    return list(member.consents.filter(purpose=PUSH).order_by("created_at", "id").values_list("granted", flat=True))


def test_subscribing_stores_the_device_and_grants_the_push_consent(client, anna, vapid):
    client.force_login(anna.user)
    sent = subscription()
    status, body = post(client, SUBSCRIBE, sent)
    assert status == 200 and body["ok"]
    device = PushSubscription.objects.get(member=anna)
    assert (device.endpoint, device.p256dh, device.auth) == (sent["endpoint"], sent["keys"]["p256dh"],
                                                             sent["keys"]["auth"])
    record = anna.consents.get(purpose=PUSH)
    assert record.granted and record.is_effective and record.source == ConsentRecord.Source.PORTAL
    assert record.text_version == vapid.LOYALTY_CONSENT_TEXT_VERSION


def test_subscribing_the_same_device_again_writes_no_second_row_or_consent(client, anna, vapid):
    client.force_login(anna.user)
    sent = subscription()
    post(client, SUBSCRIBE, sent)
    post(client, SUBSCRIBE, sent)
    assert PushSubscription.objects.filter(member=anna).count() == 1
    assert push_consents(anna) == [True]


def test_unsubscribing_the_last_device_withdraws_the_push_consent(client, anna, vapid):
    client.force_login(anna.user)
    sent = subscription()
    post(client, SUBSCRIBE, sent)
    status, body = post(client, UNSUBSCRIBE, {"endpoint": sent["endpoint"]})
    assert status == 200 and body["ok"]
    assert not PushSubscription.objects.filter(member=anna).exists()
    assert push_consents(anna) == [True, False]


def test_unsubscribing_one_of_two_devices_keeps_the_consent_for_the_other(client, anna, vapid):
    client.force_login(anna.user)
    phone, laptop = subscription("https://push.example.net/send/phone"), subscription("https://push.example.net/l")
    post(client, SUBSCRIBE, phone)
    post(client, SUBSCRIBE, laptop)
    post(client, UNSUBSCRIBE, {"endpoint": laptop["endpoint"]})
    assert list(PushSubscription.objects.filter(member=anna).values_list("endpoint", flat=True)) == [phone["endpoint"]]
    assert push_consents(anna) == [True]


def test_a_member_cannot_switch_off_another_members_device(client, anna, vapid):
    bernd = portal_member("bernd@example.org")
    bernds = subscription("https://push.example.net/send/bernd")
    client.force_login(bernd.user)
    post(client, SUBSCRIBE, bernds)
    client.force_login(anna.user)
    post(client, UNSUBSCRIBE, {"endpoint": bernds["endpoint"]})
    assert PushSubscription.objects.filter(member=bernd).count() == 1
    assert push_consents(bernd) == [True]


def test_the_push_endpoints_need_the_csrf_token(anna, vapid):
    client = Client(enforce_csrf_checks=True)
    client.force_login(anna.user)
    assert client.post(SUBSCRIBE, data=json.dumps(subscription()), content_type="application/json").status_code == 403
    assert not PushSubscription.objects.exists() and not anna.consents.exists()


def test_the_push_endpoints_take_only_a_signed_in_members_post(client, anna, vapid):
    assert client.post(SUBSCRIBE, data=json.dumps(subscription()), content_type="application/json").status_code == 302
    client.force_login(factories.StaffUserFactory())
    assert post(client, SUBSCRIBE, subscription())[0] == 403
    client.force_login(anna.user)
    assert client.get(SUBSCRIBE).status_code == 405
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize("endpoint", [
    "http://push.example.net/send/1",  # plain http
    "https://127.0.0.1/send/1",  # loopback
    "https://169.254.169.254/latest/meta-data",  # cloud metadata
    "https://10.1.2.3/send",  # private network
    "https://[::ffff:7f00:1]/send",  # loopback in IPv6 clothing
    "https://2130706433/send",  # 127.0.0.1 spelled as a number
    "https://localhost/send",
    "https://push.internal/send",
    "https://evil.example.net/send",  # a public-looking name resolving to 10.0.0.5
    "https://mixed.example.net/send",  # one public and one private address
    "https://nowhere.example.net/send",  # does not resolve
    "https://user:secret@push.example.net/send",
    "ftp://push.example.net/send",
    "javascript:alert(1)",
    "",
    "https://push.example.net/" + "a" * 1000,  # too long
])
def test_hostile_or_broken_endpoints_are_refused_and_change_nothing(client, anna, vapid, endpoint):
    client.force_login(anna.user)
    status, body = post(client, SUBSCRIBE, subscription(endpoint))
    assert status == 422 and not body["ok"] and body["message"]
    assert not PushSubscription.objects.exists() and not anna.consents.exists()


@pytest.mark.parametrize("keys", [
    {"p256dh": "not-a-key", "auth": "MDEyMzQ1Njc4OWFiY2RlZg"},
    {"p256dh": device_keys()["p256dh"], "auth": "c2hvcnQ"},
    {"p256dh": device_keys()["p256dh"]},
    "keys",
])
def test_invalid_device_keys_are_refused(client, anna, vapid, keys):
    client.force_login(anna.user)
    status, _body = post(client, SUBSCRIBE, {"endpoint": "https://push.example.net/send/1", "keys": keys})
    assert status == 422 and not PushSubscription.objects.exists()


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"endpoint": 5, "keys": None}),
                                  json.dumps({"endpoint": "https://push.example.net/" + "a" * 5000})])
def test_unreadable_requests_are_refused(client, anna, vapid, body):
    client.force_login(anna.user)
    response = client.post(SUBSCRIBE, data=body, content_type="application/json")
    assert response.status_code == 422 and not PushSubscription.objects.exists()


def test_without_vapid_keys_the_portal_says_push_is_not_available_and_refuses_devices(client, anna, settings):
    settings.LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY = settings.LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY = ""
    client.force_login(anna.user)
    html = client.get(reverse("portal:profile")).content.decode()
    assert 'data-testid="push-unavailable"' in html and "not set up" in html and "data-push-switch" not in html
    status, body = post(client, SUBSCRIBE, subscription())
    assert status == 422 and "not set up" in body["message"]
    assert not PushSubscription.objects.exists()


def test_with_vapid_keys_the_profile_shows_the_switch_with_the_public_key(client, anna, vapid):
    client.force_login(anna.user)
    html = client.get(reverse("portal:profile")).content.decode()
    assert "data-push-switch" in html and vapid.LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY in html
    assert "Notifications on this device" in html and "data-install-button" in html


def test_the_consent_forms_offer_push_as_a_purpose_of_its_own(client, anna, vapid):
    client.force_login(anna.user)
    html = client.get(reverse("portal:profile")).content.decode()
    assert 'name="push"' in html and "Offers as push notifications" in html
    client.post(reverse("portal:preferences"), {"push": "on"})
    assert push_consents(anna) == [True]


def test_a_withdrawn_push_consent_stays_withdrawn_until_the_member_subscribes_again(client, anna, vapid):
    consent_record(member=anna, purpose=PUSH, granted=False, source=ConsentRecord.Source.PORTAL)
    client.force_login(anna.user)
    post(client, SUBSCRIBE, subscription())
    assert push_consents(anna) == [False, True]


def test_erasure_deletes_the_members_devices(anna, vapid):
    from members.erasure import member_erase
    from members.push import push_subscribe

    sent = subscription()
    push_subscribe(member_id=anna.pk, endpoint=sent["endpoint"], **sent["keys"])
    member_erase(member_id=anna.pk)
    assert not PushSubscription.objects.exists()
    assert push_consents(anna)[-1] is False


def test_a_member_keeps_at_most_ten_devices_the_newest_ones(anna, vapid):
    from members.push import MAX_DEVICES_PER_MEMBER, push_subscribe

    for number in range(MAX_DEVICES_PER_MEMBER + 3):
        sent = subscription(f"https://push.example.net/send/{number}")
        push_subscribe(member_id=anna.pk, endpoint=sent["endpoint"], **sent["keys"])
    endpoints = set(PushSubscription.objects.filter(member=anna).values_list("endpoint", flat=True))
    assert len(endpoints) == MAX_DEVICES_PER_MEMBER
    assert "https://push.example.net/send/12" in endpoints and "https://push.example.net/send/0" not in endpoints
    assert push_consents(anna) == [True]
