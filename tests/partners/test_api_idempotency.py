"""Idempotency-Key over real HTTP: retries (sequential and concurrent) never double-credit, the
first response comes back byte for byte, another body is refused, failures are not remembered."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from loyalty_site.schedules import PERIODIC_TASKS
from partners.api.idempotency import _lock_id, idempotency_records_purge
from partners.models import IdempotencyRecord
from rewards.models import PointEntry, Purchase
from tests import factories
from tests.api_support import purchase_body


def test_a_post_without_an_idempotency_key_is_refused(api, member):
    response = api.post("/purchases/", purchase_body(member, "NOKEY-1"), idempotency_key=None)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
    assert not Purchase.objects.exists()
    bad = api.post("/purchases/", purchase_body(member, "NOKEY-1"), idempotency_key="has spaces")
    assert bad.status_code == 400 and bad.json()["code"] == "idempotency_key_missing"


def test_the_same_purchase_posted_three_times_earns_once_and_answers_the_same(api, member):
    body = purchase_body(member, "SEQ-1", amount="25.00")
    responses = [api.post("/purchases/", body, idempotency_key="seq-key-1") for _ in range(3)]
    assert [response.status_code for response in responses] == [201, 201, 201]
    assert responses[1].content == responses[0].content == responses[2].content
    assert "Idempotent-Replayed" not in responses[0].headers
    assert responses[1].headers["Idempotent-Replayed"] == "true"
    assert PointEntry.objects.filter(member=member).count() == 1
    member.refresh_from_db()
    assert member.points_balance == 25
    record = IdempotencyRecord.objects.get(key="seq-key-1")
    assert record.response_status == 201 and record.path == "/api/v1/purchases/"


def test_the_same_purchase_posted_three_times_at_once_earns_once(live_api, member):
    api = live_api
    body = purchase_body(member, "CONC-1", amount="30.00")
    barrier = threading.Barrier(3)
    responses: list = [None] * 3

    def post(index: int) -> None:
        client = api.with_key(api.key)  # a connection per thread
        barrier.wait()
        responses[index] = client.post("/purchases/", body, idempotency_key="conc-key-1")

    threads = [threading.Thread(target=post, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    created = [response for response in responses if response.status_code == 201]
    assert len({response.content for response in created}) == 1
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "request_in_progress"
    assert PointEntry.objects.filter(member=member).count() == 1
    # Once the first has finished, the retry gets its response.
    retry = api.post("/purchases/", body, idempotency_key="conc-key-1")
    assert retry.status_code == 201 and retry.content == created[0].content


def test_the_same_order_posted_at_once_under_different_keys_earns_once(live_api, member):
    api = live_api
    body = purchase_body(member, "CONC-2", amount="30.00")
    barrier = threading.Barrier(3)
    statuses: list = [None] * 3

    def post(index: int) -> None:
        client = api.with_key(api.key)
        barrier.wait()
        statuses[index] = client.post("/purchases/", body, idempotency_key=f"k-{index}").status_code

    threads = [threading.Thread(target=post, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 201]
    assert PointEntry.objects.filter(member=member).count() == 1


def test_a_request_while_the_first_is_still_running_gets_409(live_api, partner, member):
    api = live_api
    # The first request holds the key's advisory lock for its transaction; hold it here instead.
    lock = _lock_id(partner.pk, "busy-key")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock])
        try:
            response = api.post("/purchases/", purchase_body(member, "BUSY-1"), idempotency_key="busy-key")
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])
    assert response.status_code == 409 and response.json()["code"] == "request_in_progress"
    assert not Purchase.objects.exists()
    assert api.post("/purchases/", purchase_body(member, "BUSY-1"), idempotency_key="busy-key").status_code == 201


def test_the_same_key_with_another_body_is_422_and_changes_nothing(api, member):
    assert api.post("/purchases/", purchase_body(member, "BODY-1"), idempotency_key="body-key").status_code == 201
    response = api.post("/purchases/", purchase_body(member, "BODY-2"), idempotency_key="body-key")
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"
    assert list(Purchase.objects.values_list("order_reference", flat=True)) == ["BODY-1"]
    # Another endpoint with the same key is another request too.
    assert api.post("/members/", {"email": "k@example.org"}, idempotency_key="body-key").status_code == 422


def test_a_failed_request_is_not_remembered_so_a_corrected_retry_runs(api, member):
    bad = api.post("/purchases/", purchase_body(member, "FIX-1", amount="-1"), idempotency_key="fix-key")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = api.post("/purchases/", purchase_body(member, "FIX-1"), idempotency_key="fix-key")
    assert good.status_code == 201
    # A domain refusal (422) is not remembered either.
    reward = factories.RewardFactory(points_cost=10_000)
    refused = api.post("/redemptions/", {"card_number": member.card_number, "reward_id": reward.pk},
                       idempotency_key="r-key")
    assert refused.status_code == 422
    assert not IdempotencyRecord.objects.filter(key="r-key").exists()


def test_keys_belong_to_one_partner(api, other_api, member):
    mine = api.post("/purchases/", purchase_body(member, "SHARED-1"), idempotency_key="same-key")
    theirs = other_api.post("/purchases/", purchase_body(member, "SHARED-1"), idempotency_key="same-key")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


def test_patch_needs_no_idempotency_key(api, partner, member):
    factories.relate(member, partner)
    assert api.patch(f"/members/{member.public_id}/", {"city": "Jena"}).status_code == 200


# --- Retention ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_records_are_kept_at_least_a_day_then_purged(settings):
    settings.LOYALTY_API_IDEMPOTENCY_HOURS = 1  # asks for less than a day: a day it is
    now = timezone.now()
    factories.IdempotencyRecordFactory(created_at=now - timedelta(hours=25))
    kept = factories.IdempotencyRecordFactory(created_at=now - timedelta(hours=23))
    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.all()) == [kept]


def test_the_purge_is_a_beat_job():
    assert "loyalty_site.api.purge_idempotency_records" in [task for _, task, _ in PERIODIC_TASKS]
