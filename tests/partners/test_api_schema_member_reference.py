"""A client that knows only the OpenAPI document can name the member of a purchase: the request
body says "exactly one identifier" as a oneOf, and the server agrees with it both ways."""

from __future__ import annotations

import itertools

import pytest
from django.test import Client
from django.utils import timezone
from jsonschema import Draft202012Validator

from members import services as member_services
from tests import factories

PURCHASES = "/api/v1/purchases/"
_samples = itertools.count(1)


@pytest.fixture
def document() -> dict:
    response = Client(HTTP_HOST="localhost").get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _resolve(document: dict, schema: dict) -> dict:
    """Follows `$ref` (and drf-spectacular's one-element allOf around a $ref) to the schema itself."""
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return _resolve(document, document["components"]["schemas"][name])
    return schema


def _request_body_schema(document: dict, path: str) -> tuple[str, dict]:
    reference = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return reference.removeprefix("#/components/schemas/"), _resolve(document, {"$ref": reference})


def _sample(document: dict, schema: dict):
    """A valid value from the property's schema alone: its enum, format, type and limits."""
    schema = _resolve(document, schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind, form = schema.get("type"), schema.get("format")
    if kind == "string" and form == "decimal":
        return "12.50"
    if kind == "string" and form == "date-time":
        return timezone.now().isoformat()
    if kind == "string":
        return f"sample-{next(_samples)}"[: schema.get("maxLength", 40)]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    raise AssertionError(f"no sample value for {schema}")


def _body_for(document: dict, schema: dict, required: list[str], identifiers: dict) -> dict:
    return {name: identifiers[name] if name in identifiers else _sample(document, schema["properties"][name])
            for name in required}


@pytest.fixture
def identifiers(live_api, partner) -> dict:
    """A real member's value for every identifier the API knows (related to the partner, so an id reaches it)."""
    member = factories.relate(factories.enrolled_member(), partner)
    _, code = member_services.member_code_issue(member_id=member.pk)
    return {"member_id": str(member.public_id), "card_number": member.card_number,
            "customer_number": member.customer_number, "member_code": code}


def test_a_purchase_built_from_the_schema_alone_is_accepted_for_each_member_identifier(
        document, live_api, identifiers):
    _, schema = _request_body_schema(document, PURCHASES)
    alternatives = schema.get("oneOf", [])
    assert alternatives, "the purchase body does not say how to name the member"
    named = set()
    for alternative in alternatives:
        body = _body_for(document, schema, schema["required"] + alternative["required"], identifiers)
        answer = live_api.post("/purchases/", body)
        assert answer.status_code == 201, (alternative, body, answer.text)
        assert answer.json()["member_id"] == identifiers["member_id"]
        named.update(alternative["required"])
    assert named == {"member_id", "card_number", "customer_number", "member_code"}


@pytest.mark.parametrize("given", [[], ["card_number", "customer_number"], ["member_id", "member_code"]])
def test_a_purchase_with_none_or_two_identifiers_is_refused_by_the_schema_and_the_server(
        document, live_api, identifiers, given):
    name, schema = _request_body_schema(document, PURCHASES)
    body = _body_for(document, schema, schema["required"] + given, identifiers)
    validator = Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": document["components"]})
    assert not validator.is_valid(body), "the schema lets the body through"
    assert "member_id" in schema["description"]  # where the schema says the error goes

    answer = live_api.post("/purchases/", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"]["member_id"]


def test_every_request_body_that_names_a_member_says_so_the_same_way(document):
    """Redemptions (presence only: no member_id), complaints and survey answers (anonymous allowed)."""
    def alternatives(path):
        return [alternative.get("required") for alternative in _request_body_schema(document, path)[1]["oneOf"]]

    assert alternatives("/api/v1/redemptions/") == [["card_number"], ["customer_number"], ["member_code"]]
    assert alternatives("/api/v1/complaints/") == [["member_id"], ["card_number"], ["customer_number"],
                                                   ["member_code"]]
    assert alternatives("/api/v1/survey-responses/")[-1] is None  # the anonymous alternative: no identifier at all
