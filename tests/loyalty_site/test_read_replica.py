"""Reads from a real PostgreSQL streaming replica (issue #24): a hot standby of the throwaway
server, started once per pytest-xdist worker when these tests run (scripts/testdb.py's
`throwaway_standby`). It holds the whole cluster, so this worker's test database is there too.

A replica sees only committed data, so these tests are transactional; before each, the replica
catches up with the primary (its replay position reaches the primary's WAL position). To show
where a read went, the replica's replay is paused and a row committed on the primary after that:
a read that does not find the row was answered by the replica, a read that finds it by the
primary."""

from __future__ import annotations

import copy
import csv
import io
import time
import warnings

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Segment
from core import db_router
from core.db_router import REPLICA, primary_pinned, read_alias, reading_replica, replica_configured
from loyalty_site.dashboard import compute_figures
from loyalty_site.replica import STICKY_COOKIE
from members.models import Member
from tests import factories
from tests.campaigns.test_campaigns_admin import inline_data
from tests.celery_workers import testdb
from transfers.models import ExportLog

REPLAY_TIMEOUT = 15


@pytest.fixture(scope="session")
def standby(django_db_setup, django_db_blocker):
    """One streaming replica of the test server for this worker's session."""
    with django_db_blocker.unblock():
        primary_port = int(connections[DEFAULT_DB_ALIAS].settings_dict["PORT"])
    with testdb.throwaway_standby(primary_port) as server:
        yield server


class Replica:
    """The `replica` alias for one test: catch up, pause and resume the replay.

    The alias is in settings.DATABASES (what the router and the middleware look at) for this test
    only, and its connection is made here rather than by Django's connection handler: the
    handler's aliases are fixed when the test case starts (Django's test case refuses queries to
    an alias it was not told about, and the other tests of this worker must not see a replica)."""

    def __init__(self, port: int):
        primary = connections[DEFAULT_DB_ALIAS].settings_dict
        # The primary's settings (the test database's name included) on the standby's port; a
        # mirror, so nothing of the test machinery creates or flushes it (it is read-only).
        self.settings = {**copy.deepcopy(primary), "PORT": str(port),
                         "TEST": {**primary["TEST"], "MIRROR": DEFAULT_DB_ALIAS}}

    def add(self, settings) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Overriding setting DATABASES can lead to unexpected behavior"
            settings.DATABASES = {**settings.DATABASES, REPLICA: self.settings}
        backend = load_backend(self.settings["ENGINE"])
        connections[REPLICA] = backend.DatabaseWrapper(self.settings, REPLICA)

    def remove(self) -> None:
        connections[REPLICA].close()
        del connections[REPLICA]

    def _value(self, alias: str, sql: str, params=()):
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def catch_up(self) -> None:
        """Wait until the replica shows a row committed on the primary after everything else: it
        has then replayed all the primary wrote before. (Waiting for an LSN instead failed: after
        a segment switch, as pg_basebackup makes, the insert position points past the next page's
        header, which an idle server never writes out.)"""
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS replica_catch_up (n bigint)")
            cursor.execute("INSERT INTO replica_catch_up SELECT coalesce(max(n), 0) + 1 FROM replica_catch_up "
                           "RETURNING n")
            (marker,) = cursor.fetchone()
        deadline = time.monotonic() + REPLAY_TIMEOUT
        while not self._replica_has(marker):
            assert time.monotonic() < deadline, "the replica did not catch up with the primary"
            time.sleep(0.02)

    def _replica_has(self, marker: int) -> bool:
        try:
            return self._value(REPLICA, "SELECT EXISTS (SELECT FROM replica_catch_up WHERE n = %s)", [marker])
        except DatabaseError:  # the table itself is not replayed yet
            return False

    def pause(self) -> None:
        """From now on the replica lags: what the primary commits next is not replayed."""
        self._value(REPLICA, "SELECT pg_wal_replay_pause()::text")

    def resume(self) -> None:
        self._value(REPLICA, "SELECT pg_wal_replay_resume()::text")


@pytest.fixture
def replica(standby, transactional_db, settings):
    handle = Replica(standby["port"])
    handle.add(settings)
    try:
        handle.catch_up()
        yield handle
        handle.resume()
    finally:
        handle.remove()


@pytest.fixture
def staff(transactional_db, client):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def lagging_replica_with(replica, create_before, create_after):
    """`create_before()` reaches the replica, `create_after()` only the primary."""
    before = create_before()
    replica.catch_up()
    replica.pause()
    return before, create_after()


def test_a_console_list_reads_the_replica(replica, staff):
    lagging_replica_with(replica, lambda: Segment.objects.create(name="Stammkunden"),
                         lambda: Segment.objects.create(name="Neukunden"))

    page = staff.get(reverse("admin:campaigns_segment_changelist")).content.decode()

    assert "Stammkunden" in page
    assert "Neukunden" not in page  # committed on the primary, not yet replayed
    assert Segment.objects.filter(name="Neukunden").exists()  # outside the scope: the primary


def test_the_change_form_reads_the_primary(replica, staff):
    _, newest = lagging_replica_with(replica, lambda: None, lambda: Segment.objects.create(name="Neukunden"))

    page = staff.get(reverse("admin:campaigns_segment_change", args=[newest.pk]))

    assert page.status_code == 200
    assert "Neukunden" in page.content.decode()


def test_after_saving_the_list_comes_from_the_primary_until_the_sticky_cookie_runs_out(replica, staff, settings):
    settings.LOYALTY_REPLICA_STICKY_SECONDS = 30
    lagging_replica_with(replica, lambda: None, lambda: None)
    response = staff.post(reverse("admin:campaigns_segment_add"),
                          {"name": "Gerade gespeichert", "description": "", **inline_data([])}, follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("admin:campaigns_segment_changelist"))
    assert "Gerade gespeichert" in response.content.decode()  # the replica lags: this is the primary
    cookie = staff.cookies[STICKY_COOKIE]
    assert cookie["max-age"] == 30 and cookie["httponly"]

    del staff.cookies[STICKY_COOKIE]  # what the browser does after 30 seconds
    assert "Gerade gespeichert" not in staff.get(reverse("admin:campaigns_segment_changelist")).content.decode()


def test_the_segment_live_count_reads_the_replica(replica, staff, tiers):
    lagging_replica_with(replica, lambda: [factories.enrolled_member() for _ in range(2)],
                         lambda: factories.enrolled_member())

    response = staff.post(reverse("admin:campaigns_segment_live_count"), inline_data([]))

    assert response.json()["count"] == 2
    assert Member.objects.active().count() == 3


def test_the_dashboard_figures_are_computed_on_the_replica(replica, tiers):
    lagging_replica_with(replica, lambda: factories.enrolled_member(), lambda: factories.enrolled_member())

    with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary:
        figures = compute_figures()

    assert figures["members_total"] == 1
    assert len(on_primary) == 0  # the raw-SQL figures (the liability) ran there too


def test_an_export_reads_the_replica_and_logs_on_the_primary(replica, staff, tiers):
    old, new = lagging_replica_with(replica, lambda: factories.enrolled_member(), lambda: factories.enrolled_member())

    response = staff.post(reverse("admin:members_member_changelist"),
                          {"action": "export_csv", ACTION_CHECKBOX_NAME: [old.pk, new.pk]})

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    numbers = {row[0] for row in csv.reader(io.StringIO(body), delimiter=";")}
    assert old.customer_number in numbers
    assert new.customer_number not in numbers
    assert ExportLog.objects.get().row_count == 1  # written to the primary, counted on the replica


def test_writes_atomic_blocks_and_reads_after_a_write_go_to_the_primary(replica):
    lagging_replica_with(replica, lambda: Segment.objects.create(name="Alt"),
                         lambda: Segment.objects.create(name="Neu"))

    with reading_replica() as alias:
        assert alias == REPLICA
        assert not Segment.objects.filter(name="Neu").exists()
        old = Segment.objects.get(name="Alt")
        assert old._state.db == REPLICA
    with reading_replica(), transaction.atomic():
        assert read_alias() == DEFAULT_DB_ALIAS
        assert Segment.objects.filter(name="Neu").exists()
    with reading_replica():
        old.description = "gespeichert"
        old.save()  # read from the replica, written to the primary
        assert read_alias() == DEFAULT_DB_ALIAS  # this scope wrote: the rest of it reads the primary
        assert Segment.objects.filter(name="Neu").exists()
    with primary_pinned(), reading_replica():
        assert Segment.objects.filter(name="Neu").exists()
    assert Segment.objects.get(name="Alt").description == "gespeichert"
    assert replica_configured()


def test_an_unreachable_replica_sends_the_reads_to_the_primary(transactional_db, settings, staff, monkeypatch):
    monkeypatch.setattr(db_router, "_unreachable_until", 0.0)  # this process's memory of a failure
    nobody_listens = Replica(testdb.free_port())
    nobody_listens.add(settings)
    try:
        Segment.objects.create(name="Stammkunden")
        with reading_replica() as alias:
            assert alias == DEFAULT_DB_ALIAS
        assert "Stammkunden" in staff.get(reverse("admin:campaigns_segment_changelist")).content.decode()
        assert db_router._unreachable_until > time.monotonic()  # not tried again on every request
    finally:
        nobody_listens.remove()


def _behind(replica) -> float:
    """Wait until the paused replica has received WAL it has not replayed; its lag then."""
    deadline = time.monotonic() + REPLAY_TIMEOUT
    while (lag := db_router.replica_lag_seconds()) <= 0:
        assert time.monotonic() < deadline, "the replica received nothing new"
        time.sleep(0.02)
    return lag


def test_a_replica_further_behind_than_the_setting_is_not_read(replica, settings, monkeypatch):
    monkeypatch.setattr(db_router, "_lag", db_router._Lag())  # this process's last lag check
    lagging_replica_with(replica, lambda: Segment.objects.create(name="Alt"),
                         lambda: Segment.objects.create(name="Neu"))
    assert _behind(replica) < settings.LOYALTY_REPLICA_MAX_LAG_SECONDS
    with reading_replica() as alias:
        assert alias == REPLICA and not Segment.objects.filter(name="Neu").exists()

    settings.LOYALTY_REPLICA_MAX_LAG_SECONDS = 0
    monkeypatch.setattr(db_router, "_lag", db_router._Lag())
    with reading_replica() as alias:
        assert alias == DEFAULT_DB_ALIAS and Segment.objects.filter(name="Neu").exists()


def test_healthz_reports_the_replica_and_its_lag_without_failing(replica, client, settings):
    body = client.get("/healthz").json()
    # The other test workers write to the same cluster: a fraction of a second behind at times.
    assert body["replica"] == "ok" and body["replica_lag_seconds"] < 5 and body["warnings"] == []

    lagging_replica_with(replica, lambda: None, lambda: Segment.objects.create(name="Neu"))
    _behind(replica)
    settings.LOYALTY_REPLICA_MAX_LAG_SECONDS = 0
    response = client.get("/healthz")
    body = response.json()
    assert body["replica"] == "lagging" and body["replica_lag_seconds"] >= 0 and body["warnings"] == ["replica"]
    assert "replica" not in body["failing"]


def test_healthz_names_an_unreachable_replica(transactional_db, client, settings):
    nobody_listens = Replica(testdb.free_port())
    nobody_listens.add(settings)
    try:
        body = client.get("/healthz").json()
        assert body["replica"] == "error" and body["warnings"] == ["replica"]
    finally:
        nobody_listens.remove()
