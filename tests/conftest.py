from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import redis.client
from django.core.cache import cache
from django.db.backends.postgresql.operations import DatabaseOperations
from django.utils import translation
from pytest_django.live_server_helper import LiveServer

from core import outbound
from loyalty_site.handlers import routed_application
from tests import factories
from tests.celery_workers import own_broker, workers  # noqa: F401  (fixtures of the fault tests)


def _flush_may_truncate_the_ledger() -> None:
    """The ledger refuses TRUNCATE (rewards migration 0009) unless the transaction names the
    one exception. Django's flush (the teardown of every transactional test) empties all tables
    with one TRUNCATE inside a transaction: prefix it with that setting, for the test suite only."""
    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        return flush(self, ["SET LOCAL treuepunkt.ledger_truncate = 'allowed'", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush


_flush_may_truncate_the_ledger()


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, serving the application production serves
    (loyalty_site.handlers: the partner API behind its own middleware chain), not a bare
    Django handler."""
    address = (request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
               or "localhost")
    server = LiveServer(address, start=False)
    static_files_handler = server.thread.static_handler
    server.thread.static_handler = lambda pages: static_files_handler(routed_application(pages))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch) -> dict[str, list[str]]:
    """External DNS is outside the machine: webhook URLs resolve through this table (a test
    adds names to it). IP literals resolve to themselves, localhost to 127.0.0.1, and the
    example partners' hooks.example.org to a public address (example.com's); anything else
    does not resolve."""
    table = {"localhost": ["127.0.0.1"], "hooks.example.org": ["93.184.215.14"]}

    def resolve(host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host in table:
            return list(table[host])
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(outbound, "resolve", resolve)
    return table


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _reset_language():
    """A request to an /en/ page activates English in the test thread; it must not leak into
    the next test (tier names, messages and URLs would come out in English)."""
    yield
    translation.deactivate()


@pytest.fixture
def tiers(db):
    """The demo tier ladder: Basis (0), Silber (500), Gold (2000, ×1.25), Platin (5000, ×1.5)."""
    return factories.tier_ladder()


@pytest.fixture
def partner(db):
    return factories.PartnerFactory(name="Testmarkt GmbH")


@pytest.fixture
def base_rule(db):
    return factories.EarningRuleFactory(name_de="1 Punkt pro Euro", effect="base", value=1, priority=1)


@pytest.fixture
def member(tiers):
    return factories.enrolled_member()


# --- Partner API -------------------------------------------------------------------------------
# `api` goes through Django's test client (fast, rolled back); `live_api` over real HTTP to the
# live server (transactional: for contract tests and races). Both are the partner
# "Testmarkt GmbH" with every scope and a store "S1"; `other_api` / `other_live_api` are a
# second partner, "Fremdhandel AG", with a store "F1".

def _partner_api_key(partner, settings):
    settings.LOYALTY_WEBHOOK_ALLOW_LOCALHOST = True  # webhooks to this machine's test servers
    factories.StoreFactory(partner=partner, code="S1", name="Filiale Mitte")
    return factories.PartnerAPIKeyFactory(partner=partner).raw_key


def _other_partner_key():
    other = factories.PartnerFactory(name="Fremdhandel AG")
    factories.StoreFactory(partner=other, code="F1")
    return other, factories.PartnerAPIKeyFactory(partner=other).raw_key


@pytest.fixture
def api(tiers, base_rule, partner, settings):
    from tests.api_support import InProcessApi

    return InProcessApi(_partner_api_key(partner, settings), partner=partner)


@pytest.fixture
def other_api(api):
    other, key = _other_partner_key()
    return api.with_key(key, partner=other)


@pytest.fixture
def live_api(live_server, tiers, base_rule, partner, settings):
    from tests.api_support import ApiClient

    return ApiClient(live_server.url, _partner_api_key(partner, settings), partner=partner)


@pytest.fixture
def other_live_api(live_api):
    other, key = _other_partner_key()
    return live_api.with_key(key, partner=other)


@pytest.fixture
def redis_commands(monkeypatch) -> list[str]:
    """The commands this test sends to Redis, by name (cost tests of the API and the caches)."""
    sent: list[str] = []
    original = redis.client.Redis.execute_command

    def counting(self, *args, **options):
        sent.append(str(args[0]).upper())
        return original(self, *args, **options)

    monkeypatch.setattr(redis.client.Redis, "execute_command", counting)
    return sent


GERMAN_PO = Path(__file__).resolve().parents[1] / "locale" / "de" / "LC_MESSAGES" / "django.po"


@pytest.fixture
def german_catalogue(tmp_path, settings):
    """Our German catalogue compiled for this test: the test settings leave it out (tests read
    the English source texts), tests of what a German reader sees need it."""
    if shutil.which("msgfmt") is None:
        pytest.skip("gettext is installed by scripts/system-deps.sh")
    target = tmp_path / "locale" / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    subprocess.run(["msgfmt", "-o", str(target / "django.mo"), str(GERMAN_PO)], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale"]
