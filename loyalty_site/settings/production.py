"""Production: PostgreSQL, Redis/RabbitMQ, HTTPS. Passes `check --deploy --fail-level WARNING`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")  # required: no default in production
# --- Database: base.py computes DATABASES from DATABASE_URL (one place: connection age, health
# checks, server-side binding and the prepare threshold). Production only insists on the URL:
# not the local default of `make run`: a missing DATABASE_URL fails loudly.
env.db("DATABASE_URL")
# DATABASE_REPLICA_URL (optional): a streaming replica for the console's lists, segment counts,
# the dashboard job and exports; base.py reads it like DATABASE_URL (core/db_router.py).

# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
LOYALTY_STAFF_MFA_REQUIRED = env.bool("LOYALTY_STAFF_MFA_REQUIRED", default=True)
