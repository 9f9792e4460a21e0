"""`make bench`: the test settings (fast hashing, in-memory mail) with persistent database
connections, as production runs them: a web worker keeps its connection between requests."""

from .test import *  # noqa: F403
from .test import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 300
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
