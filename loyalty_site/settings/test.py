"""Test settings: PostgreSQL from DATABASE_URL (started by scripts/testdb.py), fast hashing."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASES, STATIC_ROOT, env

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" and not env.bool(
    "LOYALTY_ALLOW_NON_POSTGRES_TESTS", default=False
):
    raise RuntimeError("The test suite runs on PostgreSQL: run it with `make test`, which starts one.")

DATABASES["default"]["CONN_MAX_AGE"] = 0
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests assert the English source texts, also in a checkout where `make run` compiled the German
# catalogue; tests/test_translations.py checks that catalogue on its own.
LOCALE_PATHS: list = []
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOYALTY_SMS_BACKEND = "campaigns.sms.LocmemSmsBackend"  # campaigns.sms.outbox, like mail.outbox
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Each test run gets its own broker folder: tests look at what really reached the broker.
_broker = Path(env("LOYALTY_TEST_BROKER_DIR", default=tempfile.mkdtemp(prefix="loyalty-broker-")))
CELERY_BROKER_URL = "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "data_folder_in": str(_broker / "queue"),
    "data_folder_out": str(_broker / "queue"),
    "control_folder": str(_broker / "control"),
    "store_processed": False,
    "polling_interval": 0.05,
}
