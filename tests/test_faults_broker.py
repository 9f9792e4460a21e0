"""The broker fails under real Celery workers: messages published and then lost (the queue folder
wiped) or not publishable at all (the queue folder gone when the change commits). The change and
its work are rows in the database (loyalty_site.celery.enqueue), so the request that made them
succeeds, and once the broker is back the beat sweepers finish every campaign send, import and
webhook delivery exactly once.

The filesystem broker can't be killed as a process; losing it is reproduced on its folder. Its
queue folder replaced by a plain file makes every publish fail (as root, taking the write
permission away would not stop us), like a Redis that is down. The sweepers are called here
as beat would call them, with their waiting periods set to zero.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from campaigns import services as campaign_services
from campaigns.models import Campaign, Message
from loyalty_site.api import webhooks
from loyalty_site.models import WebhookDelivery, WebhookEvent
from loyalty_site.services import webhook_subscription_create
from members import imports
from members.models import ImportJob, Member
from rewards.models import PointEntry
from tests import factories
from tests.test_campaigns_worker import _broker_folder, _database_url, _delivered, _kill, _start_worker, _wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


# --- The broker's faults ------------------------------------------------------------------------

def _queued() -> list[Path]:
    return sorted(_broker_folder().glob("*.msg"))


def _wipe_broker() -> int:
    """The broker loses everything it holds (a wiped folder, a Redis restarted without its data)."""
    lost = _queued()
    for message in lost:
        message.unlink(missing_ok=True)
    return len(lost)


@contextmanager
def _broker_unreachable():
    """Every publish fails while this lasts; the broker comes back with what it held before."""
    queue = _broker_folder()
    queue.mkdir(parents=True, exist_ok=True)
    aside = queue.with_name("queue.unreachable")
    queue.rename(aside)
    queue.write_text("the broker is down\n")
    try:
        yield
    finally:
        queue.unlink()
        aside.rename(queue)


# Every delivery attempt checks the URL again: the worker must allow the receiver on 127.0.0.1
# like the test process does (the `hook` fixture).
RECEIVER_ON_THIS_MACHINE = {"LOYALTY_WEBHOOK_ALLOW_LOCALHOST": "true"}


def _worker_env(settings_module: str, **extra: str) -> dict:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": _database_url(),
            "LOYALTY_TEST_BROKER_DIR": str(_broker_folder().parent), **extra}


@pytest.fixture
def workers(tmp_path):
    """Start workers (`workers.start(env)`); whatever still runs is stopped at the end."""

    class Workers:
        log = tmp_path / "worker.log"
        running: list = []

        def start(self, env: dict):
            self.running.append(_start_worker(f"broker-fault-{len(self.running)}", env, self.log))
            return self.running[-1]

        def kill(self, sig=signal.SIGKILL):
            while self.running:
                _kill(self.running.pop(), sig)

        def wait_for(self, condition, *, what: str, timeout: float = 240):
            _wait_for(condition, timeout=timeout, what=what, log=self.log)

    _wipe_broker()  # tasks other tests left in this run's broker folder
    pool = Workers()
    yield pool
    pool.kill(signal.SIGTERM)


def test_a_publish_to_an_unreachable_broker_is_logged_not_raised(caplog):
    from loyalty_site.celery import enqueue, heartbeat

    _wipe_broker()  # tasks other tests left in this run's broker folder
    with _broker_unreachable():
        enqueue(heartbeat)  # outside a transaction: at once
    assert _queued() == [] and "could not queue loyalty_site.heartbeat" in caplog.text


# --- Campaigns ---------------------------------------------------------------------------------

def test_a_campaign_survives_an_unreachable_and_then_a_wiped_broker_with_one_message_each(tmp_path, workers):
    factories.tier_ladder()
    members = []
    for index in range(30):
        member = factories.enrolled_member(email=f"broker-loss-{index}@example.org")
        factories.ConsentRecordFactory(member=member, purpose="email")
        members.append(member)
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign)
    deliveries = tmp_path / "deliveries"
    deliveries.mkdir()
    env = _worker_env("tests.campaigns_worker_settings", LOYALTY_TEST_DELIVERY_DIR=str(deliveries))
    workers.start(env)

    # The launch commits while the broker is down: the campaign is sending, its preparation not queued.
    with _broker_unreachable():
        campaign_services.campaign_launch(campaign_id=campaign.pk)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING and _queued() == []
    time.sleep(1)
    assert not Message.objects.filter(campaign=campaign).exists()  # nothing reached the worker

    # Broker back: the sweeper finds the stalled campaign and queues the preparation again.
    with override_settings(EMAIL_BACKEND="tests.campaigns_worker.SlowFileEmailBackend"):
        assert campaign_services.sends_resume_stalled(stale_after_seconds=0)["campaigns"] == 1
    workers.wait_for(lambda: len(_delivered(deliveries)) >= 4, what="the first deliveries")

    # Worker and broker die together mid-campaign: the batches still queued are lost.
    workers.kill()
    _wipe_broker()
    delivered_before = len(_delivered(deliveries))
    assert delivered_before < 30, "the campaign finished before the broker could be lost"
    assert Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED).exists()
    workers.start(env)
    time.sleep(1)
    assert len(_delivered(deliveries)) == delivered_before  # nothing left in the broker to work on

    with override_settings(EMAIL_BACKEND="tests.campaigns_worker.SlowFileEmailBackend"):
        report = campaign_services.sends_resume_stalled(stale_after_seconds=0)
    assert report["campaigns"] == 1
    workers.wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DONE,
                     what="the campaign to finish")

    messages = list(Message.objects.filter(campaign=campaign))
    assert len(messages) == 30 and {message.status for message in messages} == {Message.Status.SENT}
    delivered = Counter(_delivered(deliveries))
    assert set(delivered) == {member.email for member in members}
    assert set(delivered.values()) == {1}, "somebody got the campaign twice"


# --- Imports -----------------------------------------------------------------------------------

ROWS = 3000


def _customer_file(rows: int = ROWS) -> bytes:
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


def test_an_import_whose_broker_messages_were_lost_is_analysed_and_imported_once(media_storage, workers, capsys):
    factories.tier_ladder()
    env = _worker_env("tests.import_worker_settings", LOYALTY_TEST_MEDIA_DIR=str(media_storage))

    # The upload commits while the broker is down: the job waits for a dry run nobody was asked for.
    with _broker_unreachable():
        job = imports.import_job_create(kind="members", upload=SimpleUploadedFile("kunden.csv", _customer_file()),
                                        options={}, staff_user=None, language="en")
        job = imports.import_job_start_dry_run(job)
    assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.PENDING and _queued() == []

    workers.start(env)
    assert imports.import_jobs_resume_stalled(confirmed_before_seconds=0) == [job.pk]
    workers.wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.ANALYSED,
                     what="the dry run")
    assert ImportJob.objects.get(pk=job.pk).count_new == ROWS and not Member.objects.exists()

    # Staff confirm; the import's task reaches the broker, which then loses it with the worker.
    workers.kill()
    imports.import_job_start(imports.import_job_confirm(job_id=job.pk, staff_user=None))
    assert _wipe_broker() == 1
    workers.start(env)
    time.sleep(1)
    assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.IMPORTING and not Member.objects.exists()

    assert imports.import_jobs_resume_stalled(confirmed_before_seconds=0) == [job.pk]
    workers.wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE, what="the import")
    assert imports.import_jobs_resume_stalled(confirmed_before_seconds=0) == []  # nothing left to resume

    assert Member.objects.count() == ROWS
    assert Member.objects.values("customer_number").distinct().count() == ROWS
    assert sum(PointEntry.objects.values_list("points", flat=True)) == sum(n % 50 for n in range(ROWS))
    call_command("verify_ledger")
    assert "ledger OK" in capsys.readouterr().out


def test_a_dry_run_whose_worker_died_is_resumed_by_the_sweeper(media_storage, workers):
    factories.tier_ladder()
    rows = 40_000
    env = _worker_env("tests.import_worker_settings", LOYALTY_TEST_MEDIA_DIR=str(media_storage))
    job = imports.import_job_create(kind="members", upload=SimpleUploadedFile("gross.csv", _customer_file(rows)),
                                    options={}, staff_user=None, language="en")
    imports.import_job_start_dry_run(job)
    workers.start(env)
    workers.wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_processed >= 1000, what="the dry run to run")
    # While it runs, the sweeper leaves it alone.
    assert imports.import_jobs_resume_stalled(confirmed_before_seconds=0) == []
    workers.kill()  # kill -9 in the middle of the dry run
    job.refresh_from_db()
    assert job.status == ImportJob.Status.ANALYSING and job.rows_processed < rows

    # Until PostgreSQL notices the killed worker's session is gone, the dry run looks busy.
    resumed: list = []
    workers.wait_for(lambda: resumed.extend(imports.import_jobs_resume_stalled(confirmed_before_seconds=0))
                     or resumed, what="the killed dry run's session to end")
    assert resumed == [job.pk]
    workers.start(env)
    workers.wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.ANALYSED,
                     what="the resumed dry run")
    job.refresh_from_db()
    assert job.count_new == rows and job.rows_total == rows and job.count_invalid == 0
    assert not Member.objects.exists()  # a dry run writes nothing but its report
    assert imports.import_jobs_resume_stalled(confirmed_before_seconds=0) == []


# --- Webhooks ----------------------------------------------------------------------------------

class DedupingReceiver:
    """A partner's endpoint that processes each X-Treuepunkt-Event-Id once and answers repeats
    with 200 (what our docs ask receivers to do). `hold_first` keeps the first request waiting
    (a slow receiver) until `release()`."""

    def __init__(self, *, hold_first: bool = False):
        self.received: list[tuple[dict, bytes]] = []
        self.processed: list[str] = []
        self.hold_first = hold_first
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = self.headers["X-Treuepunkt-Event-Id"]
                receiver.received.append((dict(self.headers), body))
                if receiver.hold_first and len(receiver.received) == 1:
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


def test_a_purchase_succeeds_while_the_broker_is_down_and_its_webhooks_arrive_once_later(live_api, member, hook,
                                                                                           workers):
    from tests.api_support import purchase_body

    receiver = hook()
    webhook_subscription_create(partner=live_api.partner, url=receiver.url, events=[WebhookEvent.POINTS_EARNED])
    env = _worker_env("loyalty_site.settings.test", **RECEIVER_ON_THIS_MACHINE)

    with _broker_unreachable():
        response = live_api.post("/purchases/", purchase_body(member, "BROKER-DOWN-1"), idempotency_key="down-1")
    assert response.status_code == 201, response.content  # the partner's purchase is booked, no 500
    unpublished = WebhookDelivery.objects.get()
    assert unpublished.status == WebhookDelivery.Status.PENDING and _queued() == []
    # The partner's retry with the same key gets the booked purchase back, not a second one.
    again = live_api.post("/purchases/", purchase_body(member, "BROKER-DOWN-1"), idempotency_key="down-1")
    assert again.status_code in (200, 201) and again.json()["id"] == response.json()["id"]
    assert WebhookDelivery.objects.count() == 1

    # A second purchase's delivery reaches the broker, which loses it before any worker runs.
    assert live_api.post("/purchases/", purchase_body(member, "BROKER-LOST-2")).status_code == 201
    assert _wipe_broker() == 1
    workers.start(env)
    time.sleep(1)
    assert receiver.received == [] and WebhookDelivery.objects.filter(status="pending").count() == 2

    assert _sweep_webhooks() == 2
    workers.wait_for(lambda: not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).exists(),
                     what="the deliveries")
    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert {(delivery.status, delivery.attempts) for delivery in deliveries} == {(WebhookDelivery.Status.DELIVERED, 1)}
    assert sorted(receiver.event_ids()) == sorted(str(delivery.event_id) for delivery in deliveries)  # once each
    assert _sweep_webhooks() == 0
    time.sleep(0.5)
    assert len(receiver.received) == 2


def test_a_worker_killed_mid_delivery_redelivers_with_the_same_event_id_and_the_receiver_keeps_one(member, hook,
                                                                                                   workers):
    receiver = hook(hold_first=True)  # the first attempt hangs at the receiver
    partner = factories.PartnerFactory()
    subscription = webhook_subscription_create(partner=partner, url=receiver.url, events=[WebhookEvent.POINTS_EARNED])
    env = _worker_env("loyalty_site.settings.test", **RECEIVER_ON_THIS_MACHINE)
    workers.start(env)
    with transaction.atomic():
        (delivery,) = webhooks.webhooks_emit(WebhookEvent.POINTS_EARNED, {"member_id": member.pk, "points": 42},
                                             partner=partner)
    workers.wait_for(lambda: len(receiver.received) == 1, what="the first attempt to reach the receiver")
    workers.kill()  # kill -9 while the receiver has the request and has not answered
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 0  # the outcome never came

    workers.start(env)
    assert _sweep_webhooks() == 1
    workers.wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == WebhookDelivery.Status.DELIVERED,
                     what="the redelivery")
    receiver.released.set()  # the killed attempt's request finally ends; its answer goes nowhere

    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.delivered_at is not None
    # At least once, with a stable id: two requests, one event id, processed once by the receiver.
    assert receiver.event_ids() == [str(delivery.event_id)] * 2
    assert receiver.processed == [str(delivery.event_id)]
    bodies = {body for _headers, body in receiver.received}
    assert len(bodies) == 1 and json.loads(bodies.pop())["id"] == str(delivery.event_id)
    for headers, body in receiver.received:
        assert webhooks.webhook_signature_verify(subscription.secret, headers[webhooks.SIGNATURE_HEADER], body)
    assert _sweep_webhooks() == 0
