"""The production settings module, imported in a child process with the environment it requires
(the test process already runs on the test settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "a-production-secret-key-for-this-test-only-0123456789",
    "DJANGO_ALLOWED_HOSTS": "loyalty.example.com",
    "DATABASE_URL": "postgres://loyalty:secret@db.example.com:5432/loyalty",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
}
PRINT_DATABASE = ("import json; from loyalty_site.settings import production as s; "
                  "print(json.dumps(s.DATABASES['default'], default=str))")


def _production(code: str, without: str = "", **overrides: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("DJANGO_", "DATABASE_", "LOYALTY_"))}
    environment.update(PRODUCTION_ENV, **overrides)
    environment.pop(without, None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


def test_production_database_keeps_the_prepared_statement_options():
    result = _production(PRINT_DATABASE)
    assert result.returncode == 0, result.stderr
    database = json.loads(result.stdout)
    assert database["ENGINE"] == "core.postgresql"  # Django's, with a health check without a round trip
    assert database["HOST"] == "db.example.com"
    assert database["OPTIONS"]["server_side_binding"] is True
    assert database["OPTIONS"]["prepare_threshold"] == 5
    assert database["OPTIONS"]["options"] == "-c jit=off"
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True


def test_production_prepare_threshold_can_be_switched_off_for_pgbouncer():
    result = _production(PRINT_DATABASE, DATABASE_PREPARE_THRESHOLD="off")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["OPTIONS"]["prepare_threshold"] is None


def test_production_refuses_to_start_without_a_database_url():
    result = _production(PRINT_DATABASE, without="DATABASE_URL")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


PRINT_DATABASES = ("import json; from loyalty_site.settings import production as s; "
                   "print(json.dumps(s.DATABASES, default=str))")


def test_production_reads_the_replica_url_like_the_primarys():
    result = _production(PRINT_DATABASES, DATABASE_REPLICA_URL="postgres://reader:secret@standby.example.com:5432/loyalty")
    assert result.returncode == 0, result.stderr
    databases = json.loads(result.stdout)
    replica = databases["replica"]
    assert replica["HOST"] == "standby.example.com" and replica["USER"] == "reader"
    assert replica["OPTIONS"] == {**databases["default"]["OPTIONS"], "connect_timeout": 3}  # binding, threshold
    assert replica["CONN_MAX_AGE"] == 60 and replica["CONN_HEALTH_CHECKS"] is True
    assert replica["TEST"] == {"MIRROR": "default"}


def test_production_without_a_replica_url_has_one_database():
    result = _production(PRINT_DATABASES)
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)) == ["default"]


def test_production_refuses_a_replica_that_is_not_postgresql():
    result = _production(PRINT_DATABASES, DATABASE_REPLICA_URL="sqlite:///replica.db")
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL" in result.stderr


def test_the_deployment_check_stays_clean_with_a_replica():
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("DJANGO_", "DATABASE_", "LOYALTY_"))}
    environment.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="loyalty_site.settings.production",
                       DATABASE_REPLICA_URL="postgres://reader:secret@standby.example.com:5432/loyalty")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
