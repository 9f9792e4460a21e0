"""Who changed a record, and from where, reaches the audit trail through one receiver connected
once (loyalty_site.audit.AuditContextMiddleware), not one connected per request."""

from __future__ import annotations

import io

import pytest
from auditlog.models import LogEntry
from django.db.models.signals import pre_save

from loyalty_site.handlers import PartnerAPIHandler
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_partner_api_change_records_the_callers_address(live_api, partner, member):
    factories.relate(member, partner)
    response = live_api.request("PATCH", f"/members/{member.public_id}/", json={"first_name": "Erika-Maria"})

    assert response.status_code == 200, response.json()
    entry = LogEntry.objects.get_for_object(member).latest("timestamp")
    assert entry.remote_addr == "127.0.0.1"  # the live server's client
    assert entry.actor is None  # a partner key, not a staff user
    assert entry.changes_dict["first_name"][1] == "Erika-Maria"


def test_a_request_leaves_the_receivers_of_pre_save_and_their_cache_alone(member, partner, settings):
    factories.relate(member, partner)
    key = factories.PartnerAPIKeyFactory(partner=partner).raw_key
    handler = PartnerAPIHandler()
    receivers = list(pre_save.receivers)
    sentinel = type("Sentinel", (), {})
    pre_save.sender_receivers_cache[sentinel] = []  # connect() and disconnect() empty this cache

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/api/v1/members/{member.public_id}/balance/",
               "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "HTTP_AUTHORIZATION": f"Api-Key {key}", "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO()}
    statuses = []
    b"".join(handler(environ, lambda status, headers, *args: statuses.append(status)))

    assert statuses == ["200 OK"]
    assert pre_save.receivers == receivers
    assert sentinel in pre_save.sender_receivers_cache
