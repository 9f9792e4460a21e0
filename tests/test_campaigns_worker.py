"""A real Celery worker is killed (SIGKILL) in the middle of a campaign and another one takes
over: every member of the audience ends up with exactly one message, nobody twice.

The worker runs with tests/campaigns_worker_settings.py against this test's database and broker
folder, and delivers through a slow backend that records every hand-over and every delivery in
files (tests/campaigns_worker.py), so deliveries can be counted across processes. With the
filesystem broker a killed worker's task is simply gone; the sweeper (the "Resume stalled
campaign sends" beat job) finds the stalled campaign, queues the interrupted claims again
(the backend is idempotent) and dispatches the queued messages anew.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from campaigns import services
from campaigns.models import Campaign, Message
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{user}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _broker_folder() -> Path:
    return Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])


def _start_worker(name: str, env: dict, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "loyalty_site", "worker", "--pool=prefork", "--concurrency=2",
               "--loglevel=INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with log.open("ab") as output:
        # Its own session, so the kill below takes the pool's child processes with it.
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _kill(worker: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(worker.pid, sig)
    except ProcessLookupError:
        return
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)


def _wait_for(condition, *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


def _delivered(folder: Path) -> list[str]:
    return [path.read_text().split()[1] for path in (folder / "delivered").glob("*")] if (
        folder / "delivered").exists() else []


def test_killing_a_worker_mid_campaign_sends_every_member_exactly_one_message(tmp_path):
    factories.tier_ladder()
    members = []
    for index in range(40):
        member = factories.enrolled_member(email=f"kill-test-{index}@example.org")
        factories.ConsentRecordFactory(member=member, purpose="email")
        members.append(member)
    campaign = factories.CampaignFactory(holdout_percent=10)
    factories.VariantFactory(campaign=campaign)
    for stale in _broker_folder().glob("*.msg"):  # tasks other tests left in this run's broker folder
        stale.unlink()

    deliveries = tmp_path / "deliveries"
    deliveries.mkdir()
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.campaigns_worker_settings",
           "DATABASE_URL": _database_url(), "LOYALTY_TEST_BROKER_DIR": str(_broker_folder().parent),
           "LOYALTY_TEST_DELIVERY_DIR": str(deliveries)}

    services.campaign_launch(campaign_id=campaign.pk)  # queues the preparation on commit
    first = _start_worker("first", env, log)
    try:
        _wait_for(lambda: len(_delivered(deliveries)) >= 6, timeout=180, what="the first deliveries", log=log)
    finally:
        _kill(first)  # kill -9 in the middle of the campaign
    in_flight = set(Message.objects.filter(campaign=campaign, status=Message.Status.SENDING)
                    .values_list("pk", flat=True))
    sent_before = len(_delivered(deliveries))
    assert sent_before < 36, "the worker finished before it could be killed"

    # What beat's sweeper does once the claims are stale (here: at once), with the worker's backend.
    with override_settings(EMAIL_BACKEND="tests.campaigns_worker.SlowFileEmailBackend"):
        report = services.sends_resume_stalled(stale_after_seconds=0)
    assert report["campaigns"] == 1 and report["requeued"] == len(in_flight)
    second = _start_worker("second", env, log)
    try:
        _wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DONE, timeout=300,
                  what="the campaign to finish", log=log)
    finally:
        _kill(second, signal.SIGTERM)

    messages = list(Message.objects.filter(campaign=campaign))
    assert len(messages) == 40 and len({message.member_id for message in messages}) == 40
    treated = {message.to_address for message in messages if not message.is_control}
    control = {member.email for member in members} - treated
    assert {message.status for message in messages if not message.is_control} == {Message.Status.SENT}
    assert {message.skip_reason for message in messages if message.is_control} <= {"holdout"}

    delivered = Counter(_delivered(deliveries))
    assert set(delivered) == treated
    assert set(delivered.values()) == {1}, "somebody got the campaign twice"
    assert not set(delivered) & control

    # Only a message in flight at the kill may have been handed to the backend twice.
    attempts = Counter((deliveries / "attempts.log").read_text().splitlines())
    repeated = {line.split()[0] for line, count in attempts.items() if count > 1}
    in_flight_ids = {f"<campaign-message.{pk}@treuepunkt.example>" for pk in in_flight}
    assert repeated <= in_flight_ids
