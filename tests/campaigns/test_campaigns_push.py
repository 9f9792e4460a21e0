"""Push as a campaign channel: only members with the push consent and a device get it, each of
their devices gets the payload encrypted for it with our VAPID signature, a push service's
404/410 deletes the device, and without VAPID keys the console refuses the channel.

The push service is outside the machine: a small HTTP server on 127.0.0.1 stands in for it (as
the webhook tests' receivers do), so everything on our side runs for real, down to the socket."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from campaigns import services, tasks
from campaigns.admin import CampaignForm
from campaigns.errors import CampaignNotReady
from campaigns.models import Campaign, Message
from members.models import ConsentRecord, PushSubscription
from members.push import push_subscribe, vapid_keys_generate
from members.services import consent_record
from tests import factories

PUSH = ConsentRecord.Purpose.PUSH


class PushService:
    """Answers POST /<name> with the status set for that name (201 by default); keeps what came."""

    def __init__(self):
        self.status: dict[str, int] = {}
        self.received: list[tuple[str, dict, bytes]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                service.received.append((self.path, dict(self.headers), body))
                self.send_response(service.status.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Device:
    """A browser's side of a subscription: its key pair and auth secret, to read what arrives."""

    def __init__(self, service: PushService, name: str):
        self.path = f"/{name}"
        self.endpoint = service.base + self.path
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = b"sixteen-byte-key"
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        self.keys = {"p256dh": _b64(public), "auth": _b64(self.auth)}

    def read(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth,
                                           version="aes128gcm"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def vapid(settings):
    keys = vapid_keys_generate()
    for name, value in keys.items():
        setattr(settings, name, value)
    settings.LOYALTY_WEBPUSH_VAPID_SUBJECT = "mailto:technik@treuepunkt.example"
    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = True  # the stand-in push service listens on 127.0.0.1
    return keys


@pytest.fixture
def push_service(vapid):
    service = PushService()
    yield service
    service.close()


def with_device(service: PushService, name: str, **member_fields):
    member = factories.enrolled_member(**member_fields)
    device = Device(service, name)
    push_subscribe(member_id=member.pk, endpoint=device.endpoint, **device.keys)  # grants the consent
    return member, device


def push_campaign(**fields) -> Campaign:
    campaign = factories.CampaignFactory(channel=Campaign.Channel.PUSH, holdout_percent=0, **fields)
    factories.VariantFactory(campaign=campaign, name="A", subject_de="Hallo {{ first_name }}",
                             body_de="Heute doppelte Punkte", subject_en="Hello {{ first_name }}",
                             body_en="Double points today")
    return campaign


def send(campaign: Campaign):
    services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    services.campaign_prepare(campaign_id=campaign.pk, dispatch=False)
    ids = list(Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED).values_list("pk", flat=True))
    return tasks.send_batch(ids)  # the Celery task's body, in this process


def test_a_push_campaign_reaches_only_members_with_push_consent_and_a_device(tiers, push_service):
    erika, erikas_phone = with_device(push_service, "erika", first_name="Erika", language="de")
    john, johns_phone = with_device(push_service, "john", first_name="John", language="en")
    withdrawn, _device = with_device(push_service, "withdrawn")
    consent_record(member=withdrawn, purpose=PUSH, granted=False, source=ConsentRecord.Source.PORTAL)
    no_device = factories.enrolled_member()
    consent_record(member=no_device, purpose=PUSH, granted=True, source=ConsentRecord.Source.PORTAL)
    email_only = factories.enrolled_member()
    factories.ConsentRecordFactory(member=email_only, purpose="email")
    campaign = push_campaign()

    report = send(campaign)

    assert report["sent"] == 2 and report["failed"] == 0
    assert report["skipped"] == {"no_consent": 2, "no_address": 1}
    assert sorted(path for path, _headers, _body in push_service.received) == ["/erika", "/john"]
    bodies = {path: body for path, _headers, body in push_service.received}
    german, english = erikas_phone.read(bodies["/erika"]), johns_phone.read(bodies["/john"])
    assert (german["title"], german["body"]) == ("Hallo Erika", "Heute doppelte Punkte")
    assert (english["title"], english["body"]) == ("Hello John", "Double points today")
    assert german["url"].endswith("/konto/") and english["url"].endswith("/en/konto/")
    statuses = dict(Message.objects.filter(campaign=campaign).values_list("member_id", "status"))
    assert statuses[erika.pk] == statuses[john.pk] == Message.Status.SENT
    assert PushSubscription.objects.get(member=erika).last_success_at is not None


def test_each_push_carries_our_vapid_signature_and_the_encryption_headers(tiers, push_service, vapid):
    with_device(push_service, "erika")
    send(push_campaign())
    (_path, headers, _body), = push_service.received
    headers = {name.lower(): value for name, value in headers.items()}
    assert headers["content-encoding"] == "aes128gcm" and int(headers["ttl"]) > 0
    token = headers["authorization"].removeprefix("vapid t=").split(",k=")[0]
    assert headers["authorization"].endswith(",k=" + vapid["LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY"])
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == push_service.base and claims["sub"].startswith("mailto:")
    public = Vapid.from_string(vapid["LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY"]).public_key
    assert public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint) \
        == base64.urlsafe_b64decode(vapid["LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY"] + "=")


def test_a_push_service_answering_410_deletes_the_device_and_the_other_device_still_gets_it(tiers, push_service):
    member, _phone = with_device(push_service, "phone")
    laptop = Device(push_service, "laptop")
    push_subscribe(member_id=member.pk, endpoint=laptop.endpoint, **laptop.keys)
    push_service.status["/laptop"] = 410
    campaign = push_campaign()

    report = send(campaign)

    assert report["sent"] == 1
    assert list(PushSubscription.objects.filter(member=member).values_list("endpoint", flat=True)) \
        == [push_service.base + "/phone"]


def test_a_member_whose_only_device_is_gone_gets_a_failed_message_and_no_device_left(tiers, push_service):
    member, _phone = with_device(push_service, "gone")
    push_service.status["/gone"] = 404
    campaign = push_campaign()

    report = send(campaign)

    assert report["sent"] == 0 and report["failed"] == 1
    message = Message.objects.get(campaign=campaign, member=member)
    assert message.status == Message.Status.FAILED and "gone (404)" in message.error
    assert not PushSubscription.objects.filter(member=member).exists()


def test_a_push_service_error_counts_a_failure_and_keeps_the_device(tiers, push_service):
    member, _phone = with_device(push_service, "busy")
    push_service.status["/busy"] = 503
    report = send(push_campaign())
    assert report["failed"] == 1
    assert PushSubscription.objects.get(member=member).failures == 1


def test_without_vapid_keys_a_push_campaign_is_refused_with_a_clear_message(tiers, settings):
    settings.LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY = settings.LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY = ""
    campaign = push_campaign()
    with pytest.raises(CampaignNotReady, match="VAPID keys are missing"):
        services.campaign_launch(campaign_id=campaign.pk, dispatch=False)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and not campaign.messages.exists()
    form = CampaignForm(data={"name": "Push", "kind": "broadcast", "channel": "push", "holdout_percent": 10,
                              "attribution_days": 14, "entry_points": 0, "winners_count": 1})
    assert not form.is_valid() and "VAPID keys are missing" in str(form.errors["channel"])


def test_with_vapid_keys_the_console_form_accepts_the_push_channel(tiers, vapid):
    form = CampaignForm(data={"name": "Push", "kind": "broadcast", "channel": "push", "holdout_percent": 10,
                              "attribution_days": 14, "entry_points": 0, "winners_count": 1})
    assert form.is_valid(), form.errors


def test_the_unsubscribe_link_of_a_push_message_withdraws_the_push_consent(tiers, push_service):
    from campaigns.sending import message_unsubscribe

    member, _phone = with_device(push_service, "erika")
    campaign = push_campaign()
    send(campaign)
    message_unsubscribe(message_id=Message.objects.get(campaign=campaign, member=member).pk)
    latest = member.consents.filter(purpose=PUSH).order_by("-created_at", "-id").first()
    assert latest.granted is False and latest.source == ConsentRecord.Source.UNSUBSCRIBE
