"""Test settings: PostgreSQL from DATABASE_URL and Redis from LOYALTY_TEST_REDIS_URL (both started by
scripts/testdb.py), fast hashing."""

import os

from .base import *  # noqa: F403
from .base import DATABASES, STATIC_ROOT, env

if "DATABASE_URL" not in os.environ or "LOYALTY_TEST_REDIS_URL" not in os.environ:
    raise RuntimeError("The test suite runs on throwaway PostgreSQL and Redis servers: run it with `make test`, "
                       "or `python scripts/testdb.py -- pytest`, which start them.")

DATABASES["default"]["CONN_MAX_AGE"] = 0
# One database, whatever the shell exports: the read-replica tests start a streaming replica of
# their own and add the alias themselves (tests/loyalty_site/test_read_replica.py).
DATABASES.pop("replica", None)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests assert the English source texts, also in a checkout where `make run` compiled the German
# catalogue; tests/loyalty_site/test_translations.py checks that catalogue on its own.
LOCALE_PATHS: list = []
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOYALTY_SMS_BACKEND = "campaigns.sms.LocmemSmsBackend"  # campaigns.sms.outbox, like mail.outbox
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The broker and the cache are the throwaway Redis server, as in production. Each pytest-xdist
# worker (and each Celery worker a test starts: it inherits PYTEST_XDIST_WORKER) gets its own
# two Redis databases, so workers never see each other's queues or keys (tests/conftest.py
# flushes the cache's database around every test).
_REDIS_URL = env("LOYALTY_TEST_REDIS_URL").rstrip("/")
_XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
LOYALTY_TEST_BROKER_DB = 2 * _XDIST_WORKER
# The broker fault tests start Celery workers on a Redis server of their own (they kill it).
CELERY_BROKER_URL = env("LOYALTY_TEST_BROKER_URL", default=f"{_REDIS_URL}/{LOYALTY_TEST_BROKER_DB}")
CELERY_BROKER_TRANSPORT = "loyalty_site.broker:Transport"  # as base.py for redis:// (loyalty_site/broker.py)
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": f"{_REDIS_URL}/{LOYALTY_TEST_BROKER_DB + 1}"}}
# A message taken by a worker that was then killed as a whole comes back after this (the
# pool-kill and Redis-restart tests do not wait for it: reject-on-worker-lost and the sweepers).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
