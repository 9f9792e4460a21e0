"""Helpers for the partner API tests: one client interface, two transports.

`ApiClient` talks to the live server over real HTTP (requests); `InProcessApi` goes through
Django's test client in the test's own thread and transaction, so it is fast, rolls back and
lets tests count queries. Both send the key, an Accept-Language, and a fresh Idempotency-Key on
every POST unless one is given (or None to send none).
"""

from __future__ import annotations

import json as jsonlib
import uuid

import requests
from django.test import Client

AUTO = object()


class _BaseApi:
    def __init__(self, key: str | None, *, partner=None, language: str = "en"):
        self.key = key
        self.partner = partner
        self.language = language

    def _headers(self, method: str, idempotency_key, headers: dict | None) -> dict:
        sent = {"Accept-Language": self.language}
        if self.key:
            sent["Authorization"] = f"Api-Key {self.key}"
        if idempotency_key is AUTO:
            idempotency_key = str(uuid.uuid4()) if method == "POST" else None
        if idempotency_key is not None:
            sent["Idempotency-Key"] = idempotency_key
        sent.update(headers or {})
        return sent

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.request("POST", path, json=json if json is not None else {}, **kwargs)

    def patch(self, path: str, json=None, **kwargs):
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


class ApiClient(_BaseApi):
    """Over real HTTP to the live server."""

    def __init__(self, base_url: str, key: str | None, **kwargs):
        super().__init__(key, **kwargs)
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def request(self, method: str, path: str, *, json=None, params=None, idempotency_key=AUTO,
                headers: dict | None = None) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base_url}/api/v1{path}"
        return self.session.request(method, url, json=json, params=params,
                                    headers=self._headers(method, idempotency_key, headers), timeout=60)

    def with_key(self, key: str | None, *, partner=None) -> ApiClient:
        return ApiClient(self.base_url, key, partner=partner, language=self.language)


class InProcessResponse:
    """Django's test response with the bits of requests' interface the tests use."""

    def __init__(self, response):
        self._response = response
        self.status_code = response.status_code
        self.content = response.content
        self.headers = response.headers

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self):
        return self._response.json()


class InProcessApi(_BaseApi):
    """Through Django's test client, in the test's thread and transaction."""

    def __init__(self, key: str | None, **kwargs):
        super().__init__(key, **kwargs)
        self.client = Client()

    def request(self, method: str, path: str, *, json=None, params=None, idempotency_key=AUTO,
                headers: dict | None = None) -> InProcessResponse:
        url = path if path.startswith("http") else f"/api/v1{path}"
        sent = self._headers(method, idempotency_key, headers)
        if method == "GET":
            response = self.client.get(url, params or {}, headers=sent)
        else:
            data = jsonlib.dumps(json) if json is not None else ""
            response = self.client.generic(method, url, data, content_type="application/json", headers=sent)
        return InProcessResponse(response)

    def with_key(self, key: str | None, *, partner=None) -> InProcessApi:
        return InProcessApi(key, partner=partner, language=self.language)


def purchase_body(member, reference: str, amount: str = "42.00", **extra) -> dict:
    body = {"card_number": member.card_number, "order_reference": reference, "amount": amount, "currency": "EUR"}
    body.update(extra)
    return body
