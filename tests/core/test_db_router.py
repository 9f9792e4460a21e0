"""The database router without a replica (the default): everything reads and writes the primary
exactly as before, and the console sets no cookie. With a real replica:
tests/loyalty_site/test_read_replica.py."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, router
from django.urls import reverse

from campaigns.models import Segment
from core.db_router import REPLICA, ReplicaRouter, read_alias, reading_replica, replica_configured
from loyalty_site.replica import STICKY_COOKIE
from tests import factories
from tests.campaigns.test_campaigns_admin import inline_data


def test_without_a_replica_reads_in_a_replica_scope_go_to_the_primary(db):
    assert not replica_configured()
    with reading_replica() as alias:
        assert alias == DEFAULT_DB_ALIAS == read_alias()
        assert router.db_for_read(Segment) == DEFAULT_DB_ALIAS
        assert ReplicaRouter().db_for_read(Segment) is None  # Django's own choice, untouched
        assert Segment.objects.create(name="Stammkunden")._state.db == DEFAULT_DB_ALIAS
        assert Segment.objects.get(name="Stammkunden")._state.db == DEFAULT_DB_ALIAS


def test_without_a_replica_the_console_sets_no_sticky_cookie(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    response = client.post(reverse("admin:campaigns_segment_add"),
                           {"name": "Neukunden", "description": "", **inline_data([])})
    assert response.status_code == 302
    assert STICKY_COOKIE not in response.cookies
    assert "Neukunden" in client.get(reverse("admin:campaigns_segment_changelist")).content.decode()


def test_only_the_primary_is_migrated_and_its_rows_relate_to_the_replicas():
    routes = ReplicaRouter()
    assert routes.allow_migrate(DEFAULT_DB_ALIAS, "members")
    assert not routes.allow_migrate(REPLICA, "members")
    on_primary, on_replica = Segment(name="a"), Segment(name="b")
    on_primary._state.db, on_replica._state.db = DEFAULT_DB_ALIAS, REPLICA
    assert routes.allow_relation(on_primary, on_replica)
    other = Segment(name="c")
    other._state.db = "elsewhere"
    assert routes.allow_relation(on_primary, other) is None
