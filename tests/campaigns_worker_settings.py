"""Settings of the Celery worker started (and killed) by tests/campaigns/test_campaigns_worker.py."""

from loyalty_site.settings.test import *  # noqa: F403

EMAIL_BACKEND = "tests.campaigns_worker.SlowFileEmailBackend"
LOYALTY_CAMPAIGN_BATCH_SIZE = 4
LOYALTY_CAMPAIGN_CAP_MESSAGES = 0
