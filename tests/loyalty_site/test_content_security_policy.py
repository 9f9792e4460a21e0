"""The Content Security Policy headers (loyalty_site/csp.py): strict on every page, exceptions
only on the paths of the third-party pages that need them, the tightest on the partner API.
tests/browser/test_content_security_policy.py shows the pages work under them in a browser."""

from __future__ import annotations

import pytest
from django.urls import reverse

from loyalty_site.csp import API_POLICY
from tests import factories

STRICT = {"default-src 'self'", "object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'",
          "form-action 'self'"}


def _directives(response) -> set[str]:
    return {part.strip() for part in response.headers["Content-Security-Policy"].split(";")}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/en/", "/accounts/login/", "/bonusbedingungen/", "/konto/"])
def test_portal_pages_get_the_strict_policy_without_exceptions(client, url):
    response = client.get(url)
    assert _directives(response) == STRICT
    assert "unsafe" not in response.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_signed_in_portal_pages_get_the_strict_policy(client, member):
    user = factories.UserFactory()
    member.user = user
    member.save(update_fields=["user"])
    client.force_login(user)
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    assert _directives(response) == STRICT


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/", "/en/admin/members/member/"])
def test_the_console_may_evaluate_alpine_expressions_and_inline_styles_but_not_inline_scripts(client, path):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    response = client.get(path)
    assert response.status_code == 200
    directives = _directives(response)
    assert directives >= STRICT
    assert "script-src 'self' 'unsafe-eval'" in directives
    assert "style-src 'self' 'unsafe-inline'" in directives


@pytest.mark.django_db
def test_the_api_docs_allow_data_images_only(client):
    response = client.get(reverse("api-docs"))
    assert _directives(response) == STRICT | {"img-src 'self' data:"}
    script = client.get(reverse("api-docs") + "?script=")  # Swagger UI's start-up script, as a file
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


@pytest.mark.django_db
def test_a_lookalike_path_gets_no_exception(client):
    response = client.get("/konto/admin/")
    assert "unsafe" not in response.headers["Content-Security-Policy"]


@pytest.mark.django_db(transaction=True)
def test_partner_api_json_gets_the_tightest_policy(live_api, member):
    response = live_api.get(f"/members/{member.public_id}/balance/", params={"card_number": member.card_number})
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == API_POLICY == "default-src 'none'; frame-ancestors 'none'"
    assert live_api.get("/members/0/balance/").headers["Content-Security-Policy"] == API_POLICY  # errors too


def test_partner_api_through_the_full_chain_gets_the_same_policy(api, member):
    response = api.get(f"/members/{member.public_id}/balance/", params={"card_number": member.card_number})
    assert _directives(response) == {"default-src 'none'", "frame-ancestors 'none'"}
