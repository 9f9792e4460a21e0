"""Console pages run a fixed number of queries (issue #24): a member's rows on each
member-related changelist cost no query per row (no per-row lookups in list_display callables),
and no page reads what only Django's unshown app list needed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import factories
from tests.core.test_member_number_search import PAGES

pytestmark = pytest.mark.django_db


def _queries(client, name: str, search: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(f"admin:{name}_changelist"), {"q": search})
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.parametrize(("name", "table", "make_row"), PAGES)
def test_a_number_search_runs_as_many_queries_for_six_rows_as_for_one(client, tiers, name, table, make_row):
    client.force_login(factories.staff_in("Administrator"))
    member = factories.MemberFactory(customer_number="K100200300")
    make_row(member)
    _queries(client, name, "K100200300")  # the first page fills the per-process caches
    one = _queries(client, name, "K100200300")
    for _ in range(5):
        make_row(member)
    six = _queries(client, name, "K100200300")
    assert len(six) == len(one), "\n".join(six)


def test_a_changelist_reads_no_programme_settings_for_an_app_list_it_never_shows(client, tiers):
    # The app list asks whether the settings row may be added (only once: a singleton), for
    # those who may add it.
    client.force_login(factories.staff_in("Administrator"))
    queries = _queries(client, "rewards_pointentry", "K100200300")
    assert not [sql for sql in queries if "rewards_programmesettings" in sql]
