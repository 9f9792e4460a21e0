"""Webhook URLs reach only the public internet: names and spellings that lead into our own
network are refused when subscribing, checked again on every attempt (DNS rebinding), and a
delivery connects to the address that was checked, with the Host header, SNI and certificate of
the name. Partners see generic reasons for failures, the detail stays in our log.

External DNS is outside the machine: names resolve through the `fake_dns` table (conftest).
Receivers are real servers on 127.0.0.1."""

from __future__ import annotations

import logging
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

from core import outbound
from partners import webhooks
from partners.api.exceptions import InvalidWebhookURL
from partners.models import WebhookDelivery, WebhookEvent
from partners.services import webhook_subscription_create
from tests import factories

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
HOOK_NAME = "hooks.partner.example.net"


class Receiver:
    """A partner's endpoint on 127.0.0.1 (HTTPS when given a TLS context): records each request
    with its headers and the SNI name, answers `status` (with `location` for redirects)."""

    def __init__(self, *, status: int = 204, location: str = "", tls: ssl.SSLContext | None = None):
        self.status, self.location, self.received, self.sni = status, location, [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(dict(self.headers))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: receiver.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture
def local_allowed(settings):
    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = True


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = False


def subscribe(url: str, partner=None):
    return webhook_subscription_create(partner=partner or factories.PartnerFactory(), url=url,
                                       events=[WebhookEvent.POINTS_EARNED])


def emit(subscription) -> WebhookDelivery:
    with transaction.atomic():
        (delivery,) = webhooks.webhooks_record([(WebhookEvent.POINTS_EARNED, {"points": 1},
                                                            [subscription.partner_id])])
    return delivery


# --- Subscribing ------------------------------------------------------------------------------

INTERNAL_ANSWERS = [
    "127.0.0.1", "127.0.0.2", "10.0.0.5", "172.16.0.1", "192.168.1.10", "169.254.169.254", "100.100.100.200",
    "0.0.0.0", "224.0.0.1",  # noqa: S104 (an answer to refuse, not an address to bind)
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fd00:ec2::254", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.5",  # IPv4-mapped
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:5",  # NAT64 of 127.0.0.1, metadata, 10.0.0.5
    "2002:7f00:1::1", "2002:a9fe:a9fe::1",  # 6to4 of 127.0.0.1 and the metadata address
    "::7f00:1",  # IPv4-compatible
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]


@pytest.mark.parametrize("answer", INTERNAL_ANSWERS)
def test_a_name_that_resolves_into_an_internal_network_is_refused(db, production, fake_dns, answer):
    fake_dns["127.0.0.1.nip.io"] = [answer]  # nip.io-style: any name can answer with any address
    with pytest.raises(InvalidWebhookURL, match="internal network addresses"):
        subscribe("https://127.0.0.1.nip.io/hooks")


def test_one_internal_address_among_public_ones_is_enough_to_refuse(db, production, fake_dns):
    fake_dns[HOOK_NAME] = [PUBLIC_V4, "10.0.0.5"]
    with pytest.raises(InvalidWebhookURL):
        subscribe(f"https://{HOOK_NAME}/hooks")


@pytest.mark.parametrize("url", [
    "https://2130706433/x", "https://0177.0.0.1/x", "https://0x7f.1/x", "https://127.1/x", "https://0x7f000001/x",
    "https://[::ffff:127.0.0.1]/x", "https://[::ffff:a9fe:a9fe]/x", "https://[64:ff9b::a9fe:a9fe]/x",
    "https://[2002:7f00:1::]/x", "https://[fe80::1%25eth0]/x",
    "https://intranet/x", "https://metadata.google.internal/computeMetadata/v1/", "https://printer.local/x",
    "https://redis.localhost/x", "https://hooks.corp/x", "https://localhost/x", "https://router.home.arpa/x",
])
def test_odd_spellings_and_internal_names_are_refused(db, production, fake_dns, url):
    fake_dns.update({name: [PUBLIC_V4] for name in ("intranet", "metadata.google.internal", "printer.local",
                                                    "redis.localhost", "hooks.corp", "router.home.arpa")})
    with pytest.raises(InvalidWebhookURL):
        subscribe(url)


def test_a_name_that_does_not_resolve_is_refused_with_a_clear_reason(db, production):
    with pytest.raises(InvalidWebhookURL, match="could not be resolved"):
        subscribe("https://no-such-host.example.net/hooks")


@pytest.mark.parametrize("answers", [[PUBLIC_V4], [PUBLIC_V6], [PUBLIC_V4, PUBLIC_V6], ["64:ff9b::5db8:d70e"]])
def test_public_addresses_are_accepted(db, production, fake_dns, answers):
    fake_dns[HOOK_NAME] = answers
    assert subscribe(f"https://{HOOK_NAME}/hooks").url == f"https://{HOOK_NAME}/hooks"


def test_the_partner_api_refuses_an_internal_name_with_the_usual_error(api, fake_dns, settings):
    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = False
    fake_dns["metadata.attacker.example.net"] = ["169.254.169.254"]
    response = api.post("/webhooks/", {"url": "https://metadata.attacker.example.net/", "events": ["points.earned"]})
    assert response.status_code == 400 and response.json()["code"] == "invalid_webhook_url"


def test_the_console_refuses_an_internal_name_with_a_form_error(admin_client, fake_dns, settings):
    from django.urls import reverse

    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = False
    fake_dns["db.attacker.example.net"] = ["10.0.0.5"]
    partner = factories.PartnerFactory()
    add = reverse("admin:partners_webhooksubscription_add")
    form = {"partner": partner.pk, "url": "https://db.attacker.example.net/", "events": ["points.earned"]}
    response = admin_client.post(add, form)
    assert response.status_code == 200 and not partner.webhook_subscriptions.exists()
    assert "internal network addresses are not accepted" in response.context["adminform"].form.errors["url"][0]
    fake_dns["db.attacker.example.net"] = [PUBLIC_V4]
    response = admin_client.post(add, form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert partner.webhook_subscriptions.exists()


# --- Delivering -------------------------------------------------------------------------------

def test_a_name_that_turns_internal_after_subscribing_is_not_connected_to(db, production, fake_dns, monkeypatch):
    fake_dns[HOOK_NAME] = [PUBLIC_V4]
    delivery = emit(subscribe(f"https://{HOOK_NAME}/hooks"))
    fake_dns[HOOK_NAME] = ["127.0.0.1"]  # DNS rebinding: the attacker's name now points at us
    connected = []
    monkeypatch.setattr(webhooks, "target_post", lambda *args, **kwargs: connected.append(args))
    delivery = webhooks.webhook_attempt(delivery_id=delivery.pk)
    assert connected == []
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (WebhookDelivery.Status.PENDING, 1, None)
    assert delivery.last_error == webhooks.ERROR_ADDRESS_REFUSED


def test_a_delivery_connects_to_the_address_it_checked_with_the_name_in_the_host_header(
        db, local_allowed, fake_dns, receivers, monkeypatch):
    hook = receivers()
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    lookups = []

    def rebinding(host, port):  # public (here: this machine) when checked, then the metadata address
        lookups.append(host)
        return next(answers)

    fake_dns[HOOK_NAME] = ["127.0.0.1"]
    subscription = subscribe(f"http://{HOOK_NAME}:{hook.port}/hooks")
    monkeypatch.setattr(outbound, "resolve", rebinding)
    delivery = webhooks.webhook_attempt(delivery_id=emit(subscription).pk)
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert lookups == [HOOK_NAME]  # one lookup per attempt: the connection uses its answer
    (headers,) = hook.received
    assert headers["Host"] == f"{HOOK_NAME}:{hook.port}"


def test_a_redirect_is_not_followed(db, local_allowed, receivers):
    elsewhere = receivers()
    hook = receivers(status=302, location=f"http://127.0.0.1:{elsewhere.port}/admin")
    delivery = webhooks.webhook_attempt(delivery_id=emit(subscribe(f"http://127.0.0.1:{hook.port}/hooks")).pk)
    assert elsewhere.received == [] and len(hook.received) == 1
    assert (delivery.status, delivery.last_status_code) == (WebhookDelivery.Status.PENDING, 302)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for HOOK_NAME (and only that name)."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", folder / "key.pem", "-out", folder / "cert.pem", "-days", "2",
                    "-subj", f"/CN={HOOK_NAME}", "-addext", f"subjectAltName=DNS:{HOOK_NAME}"],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def https_receiver(receivers, certificate, monkeypatch):
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))  # trusts the test certificate only
    monkeypatch.setattr(outbound, "tls_context", lambda: client_context)
    return receivers(tls=server_context)


def test_https_is_pinned_with_sni_and_the_certificate_checked_on_the_name(db, local_allowed, fake_dns,
                                                                            https_receiver):
    fake_dns[HOOK_NAME] = ["127.0.0.1"]
    delivery = webhooks.webhook_attempt(
        delivery_id=emit(subscribe(f"https://{HOOK_NAME}:{https_receiver.port}/hooks")).pk)
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert https_receiver.sni == [HOOK_NAME]
    assert https_receiver.received[0]["Host"] == f"{HOOK_NAME}:{https_receiver.port}"


def test_a_certificate_for_another_name_fails_with_a_generic_reason(db, local_allowed, fake_dns, https_receiver,
                                                                     caplog):
    fake_dns["other.partner.example.net"] = ["127.0.0.1"]  # the same server, whose certificate names HOOK_NAME
    with caplog.at_level(logging.WARNING, logger="loyalty_site.webhooks"):
        delivery = webhooks.webhook_attempt(
            delivery_id=emit(subscribe(f"https://other.partner.example.net:{https_receiver.port}/hooks")).pk)
    assert https_receiver.received == []
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.last_error == webhooks.ERROR_TLS
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "certificate" in caplog.text.lower()  # detail: log only


def test_partners_see_a_generic_translated_reason_not_the_socket_error(api, partner, receivers, caplog):
    closed = receivers()
    closed.close()  # nothing listens there any more
    subscription = subscribe(f"http://127.0.0.1:{closed.port}/hooks", partner=partner)
    with caplog.at_level(logging.WARNING, logger="loyalty_site.webhooks"):
        delivery = webhooks.webhook_attempt(delivery_id=emit(subscription).pk)
    assert delivery.last_error == webhooks.ERROR_CONNECTION
    assert "Connection refused" in caplog.text  # the detail, for us
    (row,) = api.get(f"/webhooks/{subscription.pk}/deliveries/").json()["results"]
    assert row["last_error"] == "The connection to the receiver failed."
    assert "Errno" not in row["last_error"] and "refused" not in row["last_error"]
    german = api.get(f"/webhooks/{subscription.pk}/deliveries/", headers={"Accept-Language": "de"})
    assert german.json()["results"][0]["last_error"] in (
        "The connection to the receiver failed.", "Die Verbindung zum Empfänger ist fehlgeschlagen.")


@pytest.mark.parametrize(("address", "allowed"), [
    (PUBLIC_V4, True), (PUBLIC_V6, True), ("64:ff9b::5db8:d70e", True), ("::ffff:93.184.215.14", True),
    ("2002:5db8:d70e::1", True), ("127.0.0.1", False), ("::ffff:7f00:1", False), ("100.64.0.1", False),
    ("198.18.0.1", False), ("not an address", False),
])
def test_the_address_rule(address, allowed):
    assert outbound.address_allowed(address) is allowed


def test_each_checked_address_is_tried_in_turn(db, local_allowed, fake_dns, receivers):
    hook = receivers()  # listens on 127.0.0.1 only
    fake_dns["localhost"] = ["::1", "127.0.0.1"]
    delivery = webhooks.webhook_attempt(delivery_id=emit(subscribe(f"http://localhost:{hook.port}/hooks")).pk)
    assert delivery.status == WebhookDelivery.Status.DELIVERED and len(hook.received) == 1
