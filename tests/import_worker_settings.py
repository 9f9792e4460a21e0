"""Settings of the Celery worker started (and killed) by tests/transfers/test_imports_worker.py: uploaded
files on disk, in the folder the test names, so the worker reads what the test stored."""

import os

from loyalty_site.settings.test import *  # noqa: F403
from loyalty_site.settings.test import STORAGES

STORAGES = {**STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                    "OPTIONS": {"location": os.environ["LOYALTY_TEST_MEDIA_DIR"]}}}
