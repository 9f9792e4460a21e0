"""A kept connection is checked before each request's first query without a round trip
(core/postgresql/base.py): usable while the server has said nothing, unusable once the server
ended it."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_idle_connection_is_usable_without_a_query(monkeypatch):
    connection.ensure_connection()

    def no_query(*args, **kwargs):
        raise AssertionError("the health check ran a query")

    monkeypatch.setattr(connection.connection, "cursor", no_query)
    assert connection.is_usable() is True


def test_a_connection_the_server_terminated_is_not_usable_and_is_replaced():
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (victim,) = cursor.fetchone()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [victim])
    finally:
        other.close()
    deadline = time.monotonic() + 5
    while not select.select([connection.connection.pgconn.socket], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, "the server did not end the connection"
    assert connection.is_usable() is False

    # What Django does before a request's first query with CONN_HEALTH_CHECKS: close and reconnect.
    connection.health_check_enabled, connection.health_check_done = True, False
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
