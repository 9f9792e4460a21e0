"""Staff sign in through allauth (rate limits, second factor) and are signed out when idle."""

from __future__ import annotations

import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty_site.staff_security import LAST_SEEN_KEY
from tests import factories


@pytest.fixture
def staff(db):
    user = factories.UserFactory(is_staff=True, is_superuser=True, email="chefin@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def test_admin_login_goes_through_allauth(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_staff_without_a_second_factor_must_set_one_up(client, staff, settings):
    settings.LOYALTY_STAFF_MFA_REQUIRED = True
    client.force_login(staff)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    settings.LOYALTY_STAFF_MFA_REQUIRED = False
    assert client.get(reverse("admin:index")).status_code == 200


def test_staff_sign_in_with_password_and_totp_code(client, staff, settings):
    settings.LOYALTY_STAFF_MFA_REQUIRED = True
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    response = client.post(reverse("account_login"), {"login": staff.email, "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("admin:index")).status_code == 302  # not signed in yet

    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200
    counter = int(time.time()) // 30
    code = format_hotp_value(hotp_value(secret, counter))
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_wrong_passwords_are_rate_limited(client, staff):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": staff.email, "password": "falsch"})
    response = client.post(reverse("account_login"), {"login": staff.email, "password": "correct-horse-battery"})
    # Even the right password is refused for a while after five failures for this account.
    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302


def test_idle_staff_sessions_end(client, staff, settings):
    settings.LOYALTY_STAFF_IDLE_SECONDS = 60
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200
    session = client.session
    session[LAST_SEEN_KEY] = time.time() - 61
    session.save()
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert client.get(reverse("admin:index")).status_code == 302  # signed out for good


def _session_writes(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return sum("django_session" in query["sql"] and not query["sql"].startswith("SELECT")
               for query in queries.captured_queries)


def test_the_last_request_time_is_written_once_a_minute_not_on_every_page(client, staff, settings):
    settings.LOYALTY_STAFF_IDLE_SECONDS = 30 * 60
    client.force_login(staff)
    stamped = client.session[LAST_SEEN_KEY]  # signing in stamps (the session is written then anyway)
    assert stamped > time.time() - 5
    assert _session_writes(client, reverse("admin:index")) == 0
    assert _session_writes(client, reverse("admin:index")) == 0
    assert client.session[LAST_SEEN_KEY] == stamped
    session = client.session
    session[LAST_SEEN_KEY] = time.time() - 61
    session.save()
    assert _session_writes(client, reverse("admin:index")) == 1  # a minute on: stamped again
    assert client.session[LAST_SEEN_KEY] > time.time() - 5


def test_a_member_signing_in_gets_no_console_stamp(client, db):
    member_user = factories.UserFactory(is_staff=False)
    client.force_login(member_user)
    assert LAST_SEEN_KEY not in client.session


def test_a_short_idle_timeout_is_stamped_at_a_tenth_of_it(client, staff, settings):
    settings.LOYALTY_STAFF_IDLE_SECONDS = 100
    client.force_login(staff)
    client.get(reverse("admin:index"))
    session = client.session
    session[LAST_SEEN_KEY] = time.time() - 11
    session.save()
    assert _session_writes(client, reverse("admin:index")) == 1


def _failed_logins_from_forged_addresses(client, count: int) -> list[int]:
    return [client.post(reverse("account_login"), {"login": f"nobody{n}@example.org", "password": "falsch"},
                        HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(count)]


def test_a_forged_x_forwarded_for_does_not_dodge_the_login_limit(client, db):
    # 30 login attempts a minute per IP: rotating the header changes nothing without a trusted proxy.
    assert _failed_logins_from_forged_addresses(client, 32)[-1] == 429


def test_behind_a_trusted_proxy_the_forwarded_address_counts(client, db, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    assert 429 not in _failed_logins_from_forged_addresses(client, 32)
