"""A real Celery worker is killed (SIGKILL) in the middle of a campaign and another one takes
over: every member of the audience ends up with exactly one message, nobody twice.

The worker runs with tests/campaigns_worker_settings.py against this test's database and a Redis
server of the test's own (tests/celery_workers.py), and delivers through a slow backend that
records every hand-over and every delivery in files (tests/campaigns_worker.py), so deliveries
can be counted across processes. A worker killed as a whole leaves its tasks unacknowledged in
Redis until the visibility timeout (an hour); the sweeper (the "Resume stalled campaign sends"
beat job) does not wait for it: it finds the stalled campaign, queues the interrupted claims
again (the backend is idempotent) and dispatches the queued messages anew.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import override_settings

from campaigns import services
from campaigns.models import Campaign, Message
from tests import factories
from tests.campaigns_worker import delivered_addresses as _delivered

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_killing_a_worker_mid_campaign_sends_every_member_exactly_one_message(tmp_path, workers):
    factories.tier_ladder()
    members = []
    for index in range(40):
        member = factories.enrolled_member(email=f"kill-test-{index}@example.org")
        factories.ConsentRecordFactory(member=member, purpose="email")
        members.append(member)
    campaign = factories.CampaignFactory(holdout_percent=10)
    factories.VariantFactory(campaign=campaign)
    deliveries = tmp_path / "deliveries"
    deliveries.mkdir()
    settings_module, env = "tests.campaigns_worker_settings", {"LOYALTY_TEST_DELIVERY_DIR": str(deliveries)}

    services.campaign_launch(campaign_id=campaign.pk)  # queues the preparation on commit
    workers.start(settings_module, **env)
    workers.wait_for(lambda: len(_delivered(deliveries)) >= 6, what="the first deliveries")
    workers.kill()  # kill -9 of the whole worker in the middle of the campaign
    in_flight = set(Message.objects.filter(campaign=campaign, status=Message.Status.SENDING)
                    .values_list("pk", flat=True))
    sent_before = len(_delivered(deliveries))
    assert sent_before < 36, "the worker finished before it could be killed"

    # What beat's sweeper does once the claims are stale (here: at once), with the worker's backend.
    with override_settings(EMAIL_BACKEND="tests.campaigns_worker.SlowFileEmailBackend"):
        report = services.sends_resume_stalled(stale_after_seconds=0)
    assert report["campaigns"] == 1 and report["requeued"] == len(in_flight)
    workers.start(settings_module, **env)
    workers.wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DONE,
                     what="the campaign to finish")

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
