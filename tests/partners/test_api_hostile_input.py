"""The partner API answers hostile bodies with a 400 in its usual shape, never a 500."""

from __future__ import annotations

import pytest


def _post_raw(api, path: str, body: str):
    return api.client.generic("POST", f"/api/v1{path}", body, content_type="application/json",
                              headers=api._headers("POST", "raw-body-1", None))


@pytest.mark.parametrize("depth", [100_000, 900])
def test_deeply_nested_json_is_a_400_in_the_usual_shape(api, depth):
    # 100,000 levels overflow Python's recursive JSON parser; 900 parse, but no request of ours
    # nests like that and the fingerprint and serializers would recurse over them again.
    response = _post_raw(api, "/purchases/", "[" * depth + "]" * depth)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "parse_error"
    assert "nests too deeply" in body["message"]
    assert body["errors"] == {}


def test_deeply_nested_objects_inside_a_field_are_refused(api, member):
    nested = '{"a":' * 5_000 + "1" + "}" * 5_000
    response = _post_raw(api, "/purchases/", f'{{"card_number": "{member.card_number}", "lines": {nested}}}')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_normally_nested_purchase_still_parses(api, member):
    from tests.api_support import purchase_body

    body = purchase_body(member, "nested-ok", lines=[{"amount": "42.00", "category": "Kaffee"}])
    response = api.post("/purchases/", body)
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize("amount", ["1e400", "-1e400", "1" + "0" * 100, "NaN", "Infinity", '"1e400"', '"NaN"'])
def test_huge_and_non_finite_numbers_are_a_400(api, member, amount):
    body = (f'{{"card_number": "{member.card_number}", "order_reference": "HUGE-1", "amount": {amount}, '
            f'"currency": "EUR", "lines": [{{"amount": {amount}, "category": "Kaffee"}}]}}')
    response = _post_raw(api, "/purchases/", body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid", "parse_error")
