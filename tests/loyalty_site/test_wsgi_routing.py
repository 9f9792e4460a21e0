"""The partner API runs behind its own middleware chain (loyalty_site/handlers.py); the pages
keep the full one. The live server serves the same routed application as production."""

from __future__ import annotations

import requests
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from loyalty_site.handlers import PartnerAPIHandler
from tests import factories


def _middleware_classes(handler) -> set[str]:
    names = set()
    for hooks in (handler._view_middleware, handler._exception_middleware):
        names |= {hook.__qualname__.split(".")[0] for hook in hooks}  # "CsrfViewMiddleware.process_view"
    return names


def test_the_api_handler_has_no_csrf_middleware_and_leaves_the_setting_alone():
    full_chain = list(settings.MIDDLEWARE)
    api = PartnerAPIHandler()
    pages = WSGIHandler()

    assert list(settings.MIDDLEWARE) == full_chain
    assert "CsrfViewMiddleware" in _middleware_classes(pages)
    assert "CsrfViewMiddleware" not in _middleware_classes(api)
    assert settings.API_MIDDLEWARE[0] == "django.middleware.security.SecurityMiddleware"


def test_an_api_request_over_http_gets_its_answer_security_headers_and_language(live_api, partner, member):
    factories.relate(member, partner)
    response = live_api.get(f"/members/{member.public_id}/balance/", headers={"Accept-Language": "de"})

    assert response.status_code == 200
    assert response.json()["member_id"] == str(member.public_id)
    assert response.headers["Content-Language"] == "de"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" not in response.cookies and "sessionid" not in response.cookies


def test_pages_behind_the_same_application_keep_sessions_and_csrf(live_server, db):
    session = requests.Session()
    page = session.get(f"{live_server.url}/accounts/login/", timeout=30)
    assert page.status_code == 200
    assert "csrftoken" in session.cookies

    refused = session.post(f"{live_server.url}/accounts/login/", data={"login": "x", "password": "y"}, timeout=30)
    assert refused.status_code == 403  # no CSRF token sent


def test_an_unknown_api_url_answers_in_the_callers_language(live_api):
    german = live_api.get("/no-such-thing/", headers={"Accept-Language": "de"})
    english = live_api.get("/no-such-thing/", headers={"Accept-Language": "en"})

    assert german.status_code == english.status_code == 404
    assert german.json()["message"] == "Nicht gefunden."
    assert english.json()["message"] == "Not found."
