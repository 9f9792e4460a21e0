"""PostgreSQL failing under the partner API's feet, for real: a backend killed in the middle of a
purchase, and a database that takes no connections. Requests answer 503 with Retry-After (never
a 500 page), nothing half-written remains, and the partner's retry with the same
Idempotency-Key completes the work exactly once."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import requests
from django.db import connection, transaction

from members.models import Member
from rewards.models import PointEntry, Purchase
from tests.api_support import purchase_body

pytestmark = pytest.mark.django_db(transaction=True)


def _backend_waiting_for_a_lock(answers: dict) -> int:
    with connection.cursor() as cursor:
        for _ in range(2000):
            if "first" in answers:
                raise AssertionError(f"the purchase did not wait: {answers['first'].text}")
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the view is a snapshot
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            row = cursor.fetchone()
            if row:
                return row[0]
            time.sleep(0.005)
        cursor.execute("SELECT pid, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity")
        raise AssertionError(f"the purchase never reached the member's lock: {cursor.fetchall()}")


def test_a_backend_killed_mid_purchase_answers_503_and_the_retry_earns_once(live_api, member):
    body = purchase_body(member, "KILL-1", amount="80.00")
    answers: dict = {}

    def post_purchase():
        answers["first"] = live_api.post("/purchases/", body, idempotency_key="retry-me")

    with transaction.atomic():  # hold the member's row: the purchase waits inside its transaction
        Member.objects.select_for_update().get(pk=member.pk)
        request = threading.Thread(target=post_purchase)
        request.start()
        victim = _backend_waiting_for_a_lock(answers)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [victim])
        request.join(timeout=60)

    first = answers["first"]
    assert first.status_code == 503, first.text
    assert first.headers["Retry-After"] == "5" and first.json()["code"] == "unavailable"
    assert not Purchase.objects.exists() and not PointEntry.objects.exists()  # nothing half-written

    retry = live_api.post("/purchases/", body, idempotency_key="retry-me")
    assert retry.status_code == 201, retry.text
    again = live_api.post("/purchases/", body, idempotency_key="retry-me")
    assert again.json() == retry.json() and again.headers["Idempotent-Replayed"] == "true"
    assert Member.objects.get(pk=member.pk).points_balance == 80
    assert PointEntry.objects.count() == 1


def test_no_connections_means_503_for_the_api_and_the_portal_then_service_resumes(live_api, live_server, member):
    database = connection.settings_dict["NAME"]
    params = {**connection.get_connection_params(), "dbname": "postgres", "autocommit": True}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as admin:  # from another database: one cannot lock out one's own
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')  # a restart, as clients see it
        try:
            api_answer = live_api.post("/purchases/", purchase_body(member, "DOWN-1"), idempotency_key="down-1")
            page = requests.get(live_server.url + "/bonusbedingungen/", timeout=30)
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert api_answer.status_code == 503 and api_answer.headers["Retry-After"] == "5"
    assert api_answer.json()["code"] == "unavailable"
    assert page.status_code == 503 and page.headers["Retry-After"] == "5" and "Treuepunkt" in page.text

    retry = live_api.post("/purchases/", purchase_body(member, "DOWN-1"), idempotency_key="down-1")
    assert retry.status_code == 201, retry.text
    assert Purchase.objects.filter(order_reference="DOWN-1").count() == 1
