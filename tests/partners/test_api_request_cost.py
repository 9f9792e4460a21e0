"""What a till's request costs besides its queries: the shared cache is asked once for all the
version stamps (key, rules, webhooks, triggers, challenges) and once for the rate counter, while
the rate limit still answers 429."""

from __future__ import annotations

from tests.api_support import purchase_body


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "errors"} and body["code"] == code



def test_a_balance_read_and_a_purchase_cost_two_cache_commands_each(api, member, settings, redis_commands):
    settings.LOYALTY_API_RATE = "1000/minute"
    assert api.post("/purchases/", purchase_body(member, "WARM-UP")).status_code == 201  # process caches warm
    redis_commands.clear()
    assert api.get(f"/members/{member.public_id}/balance/").status_code == 200
    assert redis_commands == ["MGET", "EVALSHA"]  # before: 3 stamp reads and 3 for the counter
    redis_commands.clear()
    assert api.post("/purchases/", purchase_body(member, "Q-1")).status_code == 201
    assert redis_commands == ["MGET", "EVALSHA"]  # before: 10 stamp reads and 3 for the counter


def test_the_rate_limit_still_refuses_a_key_beyond_its_rate(api, member, settings):
    settings.LOYALTY_API_RATE = "2/minute"
    assert api.post("/purchases/", purchase_body(member, "R-1")).status_code == 201
    assert api.get(f"/members/{member.public_id}/balance/").status_code == 200
    response = api.get(f"/members/{member.public_id}/balance/")
    assert_error(response, 429, "throttled")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert_error(api.post("/purchases/", purchase_body(member, "R-2")), 429, "throttled")
