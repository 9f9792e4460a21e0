"""Webhook deliveries against real receivers on this machine: signed, retried with backoff, stopped
after the last attempt, never sent twice, and visible in the admin."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.urls import reverse

from partners import webhooks
from partners.api.exceptions import InvalidWebhookURL
from partners.models import WebhookDelivery, WebhookEvent
from partners.services import webhook_subscription_create
from tests import factories


class Receiver:
    """A partner's endpoint: records what arrives and answers `status` (after `delay` seconds)."""

    def __init__(self, status: int = 204, delay: float = 0.0):
        self.status, self.delay, self.received = status, delay, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = True
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for one in made:
        one.close()


def _delivery_to(url: str, partner=None) -> WebhookDelivery:
    partner = partner or factories.PartnerFactory()
    subscription = webhook_subscription_create(partner=partner, url=url, events=[WebhookEvent.POINTS_EARNED])
    with transaction.atomic():
        (delivery,) = webhooks.webhooks_record([(WebhookEvent.POINTS_EARNED, {"member_id": 7, "points": 42},
                                                            [partner.pk])])
    assert delivery.subscription_id == subscription.pk
    return delivery


def test_a_delivery_is_signed_over_timestamp_and_body(db, receiver):
    hook = receiver()
    delivery = _delivery_to(hook.url)
    assert webhooks.webhook_attempt(delivery_id=delivery.pk).status == WebhookDelivery.Status.DELIVERED
    (headers, body), = hook.received
    secret = delivery.subscription.secret
    assert webhooks.webhook_signature_verify(secret, headers[webhooks.SIGNATURE_HEADER], body)
    assert not webhooks.webhook_signature_verify(secret, headers[webhooks.SIGNATURE_HEADER], body + b" ")
    assert not webhooks.webhook_signature_verify("another-secret", headers[webhooks.SIGNATURE_HEADER], body)
    stale = time.time() + 301
    assert not webhooks.webhook_signature_verify(secret, headers[webhooks.SIGNATURE_HEADER], body, now=stale)
    envelope = json.loads(body)
    assert envelope["event"] == "points.earned" and envelope["data"] == {"member_id": 7, "points": 42}
    assert headers["X-Treuepunkt-Event-Id"] == envelope["id"] == str(delivery.event_id)


def test_a_redelivered_task_never_sends_a_delivered_event_again(db, receiver):
    hook = receiver()
    delivery = _delivery_to(hook.url)
    webhooks.webhook_attempt(delivery_id=delivery.pk)
    webhooks.webhook_attempt(delivery_id=delivery.pk)  # the broker handed the task out twice
    assert len(hook.received) == 1
    assert WebhookDelivery.objects.get(pk=delivery.pk).attempts == 1


def test_a_500_is_retried_then_the_delivery_stops_as_failed(db, receiver, settings):
    settings.LOYALTY_WEBHOOK_MAX_ATTEMPTS = 3
    hook = receiver(status=500)
    delivery = _delivery_to(hook.url)
    # Eagerly applied, Celery runs each retry at once instead of after its countdown.
    webhooks.webhook_deliver.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert len(hook.received) == 3
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (WebhookDelivery.Status.FAILED, 3, 500)


def test_a_receiver_that_recovers_gets_the_event_once(db, receiver, settings):
    hook = receiver(status=503)
    delivery = _delivery_to(hook.url)
    webhooks.webhook_attempt(delivery_id=delivery.pk)
    hook.status = 200
    webhooks.webhook_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 2
    assert len({headers["X-Treuepunkt-Event-Id"] for headers, _ in hook.received}) == 1  # one event, two tries


def test_unreachable_and_slow_receivers_count_as_failed_attempts(db, receiver, monkeypatch):
    closed = receiver()
    closed.close()  # nothing listens on that port any more
    delivery = _delivery_to(closed.url)
    delivery = webhooks.webhook_attempt(delivery_id=delivery.pk)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1
    assert delivery.last_status_code is None and delivery.last_error

    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.3)
    slow = receiver(delay=2)
    delivery = _delivery_to(slow.url)
    started = time.monotonic()
    delivery = webhooks.webhook_attempt(delivery_id=delivery.pk)
    assert time.monotonic() - started < 1.5  # the worker gives up, it does not wait for the receiver
    assert delivery.status == WebhookDelivery.Status.PENDING and "timed out" in delivery.last_error


def test_backoff_doubles_with_jitter_and_is_capped(settings):
    settings.LOYALTY_WEBHOOK_BACKOFF_SECONDS = 30
    assert 24 <= webhooks.backoff_seconds(1) <= 36
    assert 48 <= webhooks.backoff_seconds(2) <= 72
    assert 3600 * 0.8 <= webhooks.backoff_seconds(20) <= 3600 * 1.2


def test_events_are_queued_only_when_the_change_commits(db, receiver, django_capture_on_commit_callbacks):
    hook = receiver()
    partner = factories.PartnerFactory()
    webhook_subscription_create(partner=partner, url=hook.url, events=[WebhookEvent.POINTS_EARNED])
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                webhooks.webhooks_record([(WebhookEvent.POINTS_EARNED, {"points": 1}, [partner.pk])])
                raise RuntimeError("the purchase failed")
        except RuntimeError:
            pass
    assert not callbacks and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("url", [
    "http://hooks.example.org/x", "https://10.0.0.5/x", "https://169.254.169.254/latest", "https://[fd00::1]/x",
    "https://user:pw@hooks.example.org/x", "ftp://hooks.example.org/x",
])
def test_only_public_https_urls_are_accepted(db, url):
    with pytest.raises(InvalidWebhookURL):
        webhook_subscription_create(partner=factories.PartnerFactory(), url=url, events=[WebhookEvent.POINTS_EARNED])


def test_the_delivery_history_is_in_the_admin(admin_client, receiver, settings):
    settings.LOYALTY_WEBHOOK_MAX_ATTEMPTS = 1
    hook = receiver(status=500)
    delivery = _delivery_to(hook.url)
    webhooks.webhook_attempt(delivery_id=delivery.pk)
    page = admin_client.get(reverse("admin:partners_webhookdelivery_changelist")).content.decode()
    assert "points.earned" in page and "500" in page
    detail = admin_client.get(reverse("admin:partners_webhookdelivery_change", args=[delivery.pk]))
    assert detail.status_code == 200 and "HTTP 500" in detail.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_does_not_slow_the_api(live_api, partner, member, receiver):
    from tests.api_support import purchase_body

    hook = receiver(delay=5)
    webhook_subscription_create(partner=partner, url=hook.url, events=[WebhookEvent.POINTS_EARNED])
    started = time.monotonic()
    response = live_api.post("/purchases/", purchase_body(member, "FAST-1"))
    assert response.status_code == 201 and time.monotonic() - started < 2  # delivered later, by Celery
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING and hook.received == []


@pytest.fixture
def recorded_tasks(monkeypatch):
    """What the webhooks module hands to Celery, without a broker."""
    queued = []
    monkeypatch.setattr(webhooks, "enqueue", lambda task, *args, **kwargs: queued.append((task.name, args)))
    return queued


def test_deliveries_whose_task_was_lost_are_sent_again_once(db, receiver, recorded_tasks):
    from datetime import timedelta

    from django.utils import timezone

    hook = receiver()
    lost = _delivery_to(hook.url)  # its task never ran (a worker killed before it, a lost broker message)
    waiting = _delivery_to(hook.url)
    WebhookDelivery.objects.filter(pk=waiting.pk).update(attempts=1, last_attempt_at=timezone.now())
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    recorded_tasks.clear()

    assert webhooks.webhook_deliveries_resume() == 1  # the one still in its backoff is left alone
    assert recorded_tasks == [("loyalty_site.webhooks.deliver", (lost.pk,))]
    webhooks.webhook_attempt(delivery_id=lost.pk)
    assert WebhookDelivery.objects.get(pk=lost.pk).status == WebhookDelivery.Status.DELIVERED
    assert webhooks.webhook_deliveries_resume() == 0 and len(hook.received) == 1


def test_the_sweeper_is_a_beat_job():
    from loyalty_site.schedules import PERIODIC_TASKS

    assert any(task == "loyalty_site.webhooks.resume" for _name, task, _when in PERIODIC_TASKS)
