"""The OpenAPI document: valid without warnings, and true — schemathesis generates requests for
every operation from it and checks that nothing answers 5xx and every answer matches it."""

from __future__ import annotations

import io

import pytest
import schemathesis
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories


def _served_schema() -> dict:
    """The document exactly as /api/schema/ serves it (generated from the code, no database)."""
    response = Client(HTTP_HOST="localhost").get("/api/schema/", {"format": "json"})  # before pytest-django sets hosts
    assert response.status_code == 200
    return response.json()


schema = schemathesis.openapi.from_dict(_served_schema())


def test_the_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn: a serializer drf-spectacular cannot describe fails the suite, not a client.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"),
                 stdout=io.StringIO(), stderr=io.StringIO())
    assert "/api/v1/purchases/" in (tmp_path / "schema.yaml").read_text()


def test_the_docs_page_works_without_internet(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page and "cdn." not in page and "unpkg" not in page  # the sidecar's local files


@pytest.fixture
def fuzz_key(live_server, tiers, base_rule, partner, settings):
    """A key with every scope and a member to find, so generated ids sometimes hit something."""
    factories.StoreFactory(partner=partner, code="S1")
    factories.enrolled_member()
    factories.RewardFactory(points_cost=10)
    return factories.PartnerAPIKeyFactory(partner=partner).raw_key


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_requests_get_no_5xx_and_answers_match_the_schema(case, fuzz_key, live_server):
    # Over real HTTP to the live server: the same stack a till's request goes through.
    # The checks the contract promises. Left out: schemathesis's guesses whether a request
    # "should" have been accepted; business rules (a purchase from the year 2000, a voucher code
    # with a bad check digit) refuse schema-valid bodies with a 400 by design.
    case.call_and_validate(base_url=live_server.url,
                           headers={"Authorization": f"Api-Key {fuzz_key}", "Accept-Language": "de"},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance, response_headers_conformance])
