"""The broker fails under real Celery workers (prefork pool) on Redis: Redis killed and restarted
without its data in the middle of a campaign send, an import and a webhook delivery; the pool's
processes killed in the middle of the same work; Redis down when a change commits. After recovery
the same worker process goes on consuming (nobody restarts it), and every message, row and
delivery happens as docs/faults.md promises: campaign messages and imported rows exactly once,
webhooks at least once with one event id, each within a bounded time.

The change and its work are rows in the database (core.tasks.enqueue), so the request
that made them succeeds while Redis is down, and the beat sweepers queue again what Redis lost.
They are run here as beat runs them (`Beat`: every second instead of every 5 minutes, with their
waiting periods set to zero). Each test has a Redis server of its own (tests/celery_workers.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.models import Campaign, Message
from members.models import Member
from partners import webhooks
from partners.models import WebhookDelivery, WebhookEvent
from partners.services import webhook_subscription_create
from rewards.models import PointEntry
from tests import factories
from tests.campaigns_worker import delivered_addresses, handed_over
from transfers import services as imports
from transfers.models import ImportJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECOVERY_SECONDS = 90  # the bound within which everything must have happened after a fault


class Beat:
    """Runs the sweepers the way beat does, only every `every` seconds and without their waiting
    periods, while a test waits: `beat.tick()` inside a wait condition."""

    def __init__(self, *sweepers, every: float = 1.0):
        self.sweepers = sweepers
        self.every = every
        self.last = 0.0
        self.runs = 0

    def tick(self) -> None:
        if time.monotonic() - self.last >= self.every:
            for sweep in self.sweepers:
                sweep()
            self.last = time.monotonic()
            self.runs += 1


def test_a_publish_to_an_unreachable_broker_is_logged_not_raised(own_broker, caplog):
    from core.tasks import enqueue
    from loyalty_site.celery import heartbeat

    own_broker.kill()
    started = time.monotonic()
    enqueue(heartbeat)  # outside a transaction: at once
    assert "could not queue loyalty_site.heartbeat" in caplog.text
    assert time.monotonic() - started < 10  # a publish gives up quickly, the request goes on
    own_broker.start()
    assert own_broker.queued() == 0


# --- Campaigns ---------------------------------------------------------------------------------

def _sweep_sends() -> None:
    # Stale after 10 s without progress, not at once: beat's sweeper never takes the claims of a
    # batch that is still sending (on a slow machine a batch outlasts a tick, and re-queuing its
    # messages every second kept the campaign from ever finishing).
    with override_settings(EMAIL_BACKEND="tests.campaigns_worker.SlowFileEmailBackend"):  # the worker's backend
        campaign_services.sends_resume_stalled(stale_after_seconds=10)


def test_a_campaign_survives_redis_restarted_empty_and_its_pool_killed_with_one_message_each(tmp_path, workers):
    factories.tier_ladder()
    members = []
    for index in range(40):
        member = factories.enrolled_member(email=f"broker-loss-{index}@example.org")
        factories.ConsentRecordFactory(member=member, purpose="email")
        members.append(member)
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    deliveries = tmp_path / "deliveries"
    deliveries.mkdir()
    worker = workers.start("tests.campaigns_worker_settings", LOYALTY_TEST_DELIVERY_DIR=str(deliveries))
    campaign_services.campaign_launch(campaign_id=campaign.pk)
    workers.wait_for(lambda: len(delivered_addresses(deliveries)) >= 4, what="the first deliveries")

    # Redis dies with the queued batches and comes back empty; the worker reconnects by itself.
    workers.broker.restart()
    lost_at = len(delivered_addresses(deliveries))
    assert lost_at < 40, "the campaign finished before Redis could be lost"
    beat = Beat(_sweep_sends)
    workers.wait_for(lambda: beat.tick() or len(delivered_addresses(deliveries)) >= lost_at + 6,
                     what="deliveries after the restart", timeout=RECOVERY_SECONDS)

    # The pool's processes are killed mid-send; the main process replaces them and gets the batch
    # in flight back from Redis (reject on worker lost), the sweeper the claims it left.
    workers.wait_for_pool(worker)
    killed = workers.kill_pool(worker)
    assert killed
    took = workers.wait_for(lambda: beat.tick() or Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DONE,
                            what="the campaign to finish", timeout=RECOVERY_SECONDS)
    assert worker.poll() is None, "the worker had to be restarted"
    assert set(workers.pool_pids(worker)).isdisjoint(killed)

    messages = list(Message.objects.filter(campaign=campaign))
    assert len(messages) == 40 and {message.status for message in messages} == {Message.Status.SENT}
    delivered = Counter(delivered_addresses(deliveries))
    assert set(delivered) == {member.email for member in members}
    assert set(delivered.values()) == {1}, "somebody got the campaign twice"
    # Only messages in flight at a fault were handed to the backend twice (it dropped the repeat).
    assert sum(count - 1 for count in Counter(handed_over(deliveries)).values()) <= 2 * 2 * 50
    assert took < RECOVERY_SECONDS


# --- Imports -----------------------------------------------------------------------------------

def _customer_file(rows: int) -> bytes:
    lines = ["Kundennummer;Vorname;Nachname;E-Mail;Anfangsbestand"]
    lines += [f"B-{n:06d};Kim;Lange;kim.lange{n}@example.org;{n % 50}" for n in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


@pytest.fixture
def media_storage(tmp_path):
    media = tmp_path / "media"
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                            "OPTIONS": {"location": str(media)}},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES=storages, LOYALTY_IMPORT_SYNC_MAX_BYTES=0):
        yield media


def _job(job_id: int) -> ImportJob:
    return ImportJob.objects.get(pk=job_id)


def test_an_import_survives_redis_restarted_mid_dry_run_and_its_pool_killed_mid_import(media_storage, workers,
                                                                                      capsys):
    factories.tier_ladder()
    rows = 40_000
    worker = workers.start("tests.import_worker_settings", LOYALTY_TEST_MEDIA_DIR=str(media_storage))
    job = imports.import_job_create(kind="members", upload=SimpleUploadedFile("kunden.csv", _customer_file(rows)),
                                    options={}, staff_user=None, language="en")
    imports.import_job_start_dry_run(job)
    workers.wait_for(lambda: _job(job.pk).rows_processed >= 1000, what="the dry run to run")

    # Redis dies under the running dry run (its task message is lost with it) and comes back empty.
    workers.broker.restart()
    beat = Beat(lambda: imports.import_jobs_resume_stalled(confirmed_before_seconds=0))
    workers.wait_for(lambda: beat.tick() or _job(job.pk).status == ImportJob.Status.ANALYSED,
                     what="the dry run", timeout=RECOVERY_SECONDS)
    job = _job(job.pk)
    assert job.count_new == rows and job.rows_total == rows and not Member.objects.exists()

    # Staff confirm: the import's task goes to the restarted Redis, the same worker takes it.
    imports.import_job_start(imports.import_job_confirm(job_id=job.pk, staff_user=None))
    workers.wait_for(lambda: _job(job.pk).status == ImportJob.Status.IMPORTING and _job(job.pk).rows_processed >= 2000,
                     what="the import to be under way", timeout=RECOVERY_SECONDS)
    killed = workers.kill_pool(worker)  # kill -9 in the middle of the import's transaction
    assert killed and not Member.objects.exists()  # nothing half-written

    workers.wait_for(lambda: beat.tick() or _job(job.pk).status == ImportJob.Status.DONE, what="the import",
                     timeout=RECOVERY_SECONDS)
    assert worker.poll() is None, "the worker had to be restarted"
    assert imports.import_jobs_resume_stalled(confirmed_before_seconds=0) == []  # nothing left to resume
    assert Member.objects.count() == rows
    assert Member.objects.values("customer_number").distinct().count() == rows
    assert sum(PointEntry.objects.values_list("points", flat=True)) == sum(n % 50 for n in range(rows))
    with connection.cursor() as cursor:
        # Tables just filled by COPY have no statistics until autovacuum gets to them; without
        # them verify_ledger's join was once planned as a nested loop over 40,000 members.
        cursor.execute("ANALYZE members_member, rewards_pointentry")
    call_command("verify_ledger")
    assert "ledger OK" in capsys.readouterr().out


# --- Webhooks ----------------------------------------------------------------------------------

class DedupingReceiver:
    """A partner's endpoint that processes each X-Treuepunkt-Event-Id once and answers repeats
    with 200 (what our docs ask receivers to do). The requests numbered in `hold` (1 = the first)
    wait (a slow receiver) until `released` is set."""

    def __init__(self, *, hold: tuple[int, ...] = ()):
        self.received: list[tuple[dict, bytes]] = []
        self.processed: list[str] = []
        self.hold = hold
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = self.headers["X-Treuepunkt-Event-Id"]
                receiver.received.append((dict(self.headers), body))
                if len(receiver.received) in receiver.hold:
                    receiver.released.wait(timeout=120)
                if event_id not in receiver.processed:
                    receiver.processed.append(event_id)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event_ids(self) -> list[str]:
        return [headers["X-Treuepunkt-Event-Id"] for headers, _body in self.received]

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(settings):
    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = True
    made: list[DedupingReceiver] = []

    def make(**kwargs) -> DedupingReceiver:
        made.append(DedupingReceiver(**kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _sweep_webhooks() -> int:
    """Beat's sweeper, as it would run once the deliveries are overdue (5 minutes and more)."""
    return webhooks.webhook_deliveries_resume(now=timezone.now() + timedelta(minutes=6))


def _emit(partner, points: int) -> WebhookDelivery:
    with transaction.atomic():
        (delivery,) = webhooks.webhooks_record([(WebhookEvent.POINTS_EARNED, {"points": points}, [partner.pk])])
    return delivery


# Every delivery attempt checks the URL again: the worker must allow the receiver on 127.0.0.1
# like the test process does (the `hook` fixture).
RECEIVER_ON_THIS_MACHINE = {"LOYALTY_WEBHOOK_ALLOW_LOCALHOST": "true"}


def _status(delivery: WebhookDelivery) -> str:
    return WebhookDelivery.objects.get(pk=delivery.pk).status


def test_a_purchase_succeeds_while_redis_is_down_and_its_webhook_arrives_once_later(live_api, member, hook, workers):
    from tests.api_support import purchase_body

    receiver = hook()
    webhook_subscription_create(partner=live_api.partner, url=receiver.url, events=[WebhookEvent.POINTS_EARNED])
    workers.start(**RECEIVER_ON_THIS_MACHINE)

    workers.broker.kill()
    response = live_api.post("/purchases/", purchase_body(member, "BROKER-DOWN-1"), idempotency_key="down-1")
    assert response.status_code == 201, response.content  # the partner's purchase is booked, no 500
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING
    # The partner's retry with the same key gets the booked purchase back, not a second one.
    again = live_api.post("/purchases/", purchase_body(member, "BROKER-DOWN-1"), idempotency_key="down-1")
    assert again.status_code in (200, 201) and again.json()["id"] == response.json()["id"]
    assert WebhookDelivery.objects.count() == 1

    workers.broker.start()
    assert _sweep_webhooks() == 1  # beat's sweeper, once the delivery is overdue
    workers.wait_for(lambda: _status(WebhookDelivery.objects.get()) == WebhookDelivery.Status.DELIVERED,
                     what="the delivery", timeout=RECOVERY_SECONDS)
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 1 and receiver.event_ids() == [str(delivery.event_id)]
    assert _sweep_webhooks() == 0


def test_webhooks_survive_a_killed_pool_and_redis_restarted_mid_delivery_with_stable_event_ids(member, hook, workers):
    receiver = hook(hold=(1, 3))  # the first and the third request hang at the receiver
    partner = factories.PartnerFactory()
    subscription = webhook_subscription_create(partner=partner, url=receiver.url, events=[WebhookEvent.POINTS_EARNED])
    worker = workers.start(**RECEIVER_ON_THIS_MACHINE)
    first = _emit(partner, 1)
    workers.wait_for(lambda: len(receiver.received) == 1, what="the first attempt to reach the receiver")

    # The pool process holding the request is killed: the main process gives the task back to
    # Redis (reject on worker lost) and a new pool process delivers it again, no sweeper needed.
    workers.kill_pool(worker)
    assert _status(first) == WebhookDelivery.Status.PENDING  # the outcome never came
    workers.wait_for(lambda: _status(first) == WebhookDelivery.Status.DELIVERED, what="the redelivery",
                     timeout=RECOVERY_SECONDS)

    # Redis dies while the second delivery hangs at the receiver, and comes back empty.
    second = _emit(partner, 2)
    workers.wait_for(lambda: len(receiver.received) == 3, what="the second delivery to reach the receiver")
    workers.broker.restart()
    receiver.released.set()  # the receiver answers: the worker records it, its ack goes nowhere
    workers.wait_for(lambda: _status(second) == WebhookDelivery.Status.DELIVERED, what="the second delivery",
                     timeout=RECOVERY_SECONDS)
    # The same worker consumes from the restarted Redis.
    third = _emit(partner, 3)
    # (Celery's own prefork pool stopped consuming here now and then: loyalty_site/workerpool.py.)
    workers.wait_for(lambda: _status(third) == WebhookDelivery.Status.DELIVERED,
                     what="a delivery after the restart", timeout=RECOVERY_SECONDS)
    assert worker.poll() is None, "the worker had to be restarted"
    assert _sweep_webhooks() == 0

    deliveries = [WebhookDelivery.objects.get(pk=delivery.pk) for delivery in (first, second, third)]
    assert [delivery.attempts for delivery in deliveries] == [1, 1, 1]
    # At least once, with a stable id: the first event came twice with one id, was processed once.
    ids = [str(delivery.event_id) for delivery in deliveries]
    assert Counter(receiver.event_ids()) == {ids[0]: 2, ids[1]: 1, ids[2]: 1}
    assert receiver.processed == ids
    first_bodies = {body for headers, body in receiver.received if headers["X-Treuepunkt-Event-Id"] == ids[0]}
    assert len(first_bodies) == 1 and json.loads(first_bodies.pop())["id"] == ids[0]
    for headers, body in receiver.received:
        assert webhooks.webhook_signature_verify(subscription.secret, headers[webhooks.SIGNATURE_HEADER], body)
