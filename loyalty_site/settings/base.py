"""Settings shared by every environment.

Each section links to the Django (or library) documentation of its settings.
Values come from the environment; `environ` fails loudly on malformed values.
Loyalty knobs are the `LOYALTY_*` settings at the end, with their defaults in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

import environ
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# --- Core ------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#core-settings
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Unfold without its own site: the console's (loyalty_site.admin_site) is the default site.
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "loyalty_site.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_celery_beat",
    "auditlog",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "core",
    "loyalty_site",
    "partners",
    "members",
    "rewards",
    "referrals",
    "campaigns",
    "feedback",
    "transfers",
    "engagement",
    "offers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "loyalty_site.csp.PageContentSecurityPolicyMiddleware",  # CONTENT_SECURITY_POLICY below
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "loyalty_site.staff_security.StaffSecurityMiddleware",
    "loyalty_site.audit.AuditContextMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx: portal views answer htmx with fragments
    # Last, after the session, user and staff checks (read on the primary): console lists from
    # the replica if one is configured (DATABASE_REPLICA_URL), and the sticky primary after a write.
    "loyalty_site.replica.ReplicaReadsMiddleware",
]
# The partner API's chain (loyalty_site/handlers.py): no sessions, CSRF, messages or URL
# languages, which belong to the cookie-based pages; the audit trail keeps the caller's address.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "loyalty_site.csp.APIContentSecurityPolicyMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "loyalty_site.audit.AuditContextMiddleware",
    "partners.api.base.APILanguageMiddleware",
]

ROOT_URLCONF = "loyalty_site.urls"
WSGI_APPLICATION = "loyalty_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# PostgreSQL only (psycopg 3), locally and in production. The default is the cluster `make run`
# starts under var/postgres (scripts/localstack.sh). SQLite is not supported: campaign sends
# failed with "database is locked" and the code path nobody tested was the one run first.
LOCAL_DATABASE_URL = "postgres://postgres@127.0.0.1:54329/loyalty"
DATABASES = {"default": env.db("DATABASE_URL", default=LOCAL_DATABASE_URL)}
if DATABASES["default"].get("ENGINE") != "django.db.backends.postgresql":
    raise environ.ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://…).")
# Django's backend with a health check that costs no round trip (core/postgresql/base.py).
POSTGRESQL_ENGINE = "core.postgresql"
DATABASES["default"]["ENGINE"] = POSTGRESQL_ENGINE
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Parameters bound on the server, and a statement run 5 times on a connection is prepared:
# PostgreSQL plans the till's queries once per connection instead of on every request
# (planning the balance query cost more than running it). Behind a transaction-mode
# PgBouncer without prepared-statement support, set DATABASE_PREPARE_THRESHOLD=off.
_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
DATABASES["default"].setdefault("OPTIONS", {}).update(
    server_side_binding=True, prepare_threshold=None if _threshold == "off" else int(_threshold))
# No JIT compilation (PostgreSQL's `jit`, on by default): our queries are short, and compiling
# one costs more than it saves. At 1,000,000 members, measured on and off in turns: the segment
# with an OR group took 310-377 ms with it and 151-154 ms without; the other segments, the
# dashboard job, verify_ledger and the import did not change. Set per connection, so it holds on
# any server.
DATABASES["default"]["OPTIONS"]["options"] = " ".join(
    filter(None, [DATABASES["default"]["OPTIONS"].get("options", ""), "-c jit=off"]))
# A PostgreSQL streaming replica (hot standby) of that database, if there is one: console lists,
# segment counts, the dashboard job and exports read from it, everything else from the primary
# (core/db_router.py has the rules; README "Past one machine"). Unset: one database, as before.
# https://docs.djangoproject.com/en/5.2/topics/db/multi-db/
REPLICA_DATABASE_URL = env.str("DATABASE_REPLICA_URL", default="")
if REPLICA_DATABASE_URL:
    _replica = env.db_url_config(REPLICA_DATABASE_URL)
    if _replica.get("ENGINE") != "django.db.backends.postgresql":
        raise environ.ImproperlyConfigured("DATABASE_REPLICA_URL must name a PostgreSQL database (postgres://…).")
    DATABASES["replica"] = {
        **_replica, "ENGINE": POSTGRESQL_ENGINE, "ATOMIC_REQUESTS": False, "CONN_HEALTH_CHECKS": True,
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        # A replica that does not answer is given up quickly (core/db_router.py: the primary then).
        "OPTIONS": {**DATABASES["default"]["OPTIONS"], "connect_timeout": 3, **_replica.get("OPTIONS", {})},
        # A test run makes no database of its own on it: it is the primary's, streamed.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["core.db_router.ReplicaRouter"]  # answers None (the primary) without a replica
# A browser that wrote (POST …) reads its console lists from the primary for this long: the saved
# row is in the list it is sent back to, however far the replica lags (loyalty_site/replica.py).
LOYALTY_REPLICA_STICKY_SECONDS = env.int("LOYALTY_REPLICA_STICKY_SECONDS", default=10)
# A replica further behind than this is not read (core/db_router.py) and /healthz says "lagging".
LOYALTY_REPLICA_MAX_LAG_SECONDS = env.float("LOYALTY_REPLICA_MAX_LAG_SECONDS", default=30.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache -----------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/cache/
# Rate limits, the worker and beat heartbeats and the per-process caches' version stamps need a
# cache shared by all processes: Redis, by default database 1 of the server `make run` starts.
LOCAL_REDIS_URL = "redis://127.0.0.1:63799"
CACHES = {"default": env.cache("CACHE_URL", default=f"{LOCAL_REDIS_URL}/1")}

# --- Authentication --------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/auth/ and https://docs.allauth.org/
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "core.validators.MaximumLengthPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "request_login_code": "20/m/ip,3/m/key",
}
# Rate limits count per client IP. Behind N reverse proxies that append to X-Forwarded-For, set
# LOYALTY_TRUSTED_PROXY_COUNT=N; with 0 (the default) the header is ignored, so a forged one
# cannot dodge a limit.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("LOYALTY_TRUSTED_PROXY_COUNT", default=0)
# The member portal: staff go to the console after login, members to their dashboard; a
# verified e-mail links the login to its member (members/adapters.py).
ACCOUNT_ADAPTER = "members.adapters.PortalAccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "referrals.forms.SignupReferralForm"  # the optional referral code
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Treuepunkt: "
ACCOUNT_SESSION_REMEMBER = None  # ask ("stay signed in")
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300  # deleting the account asks for the password again after this

# --- Internationalisation --------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/i18n/
LANGUAGE_CODE = "de"
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Berlin"
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/static-files/ and https://whitenoise.readthedocs.io/
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- E-mail ----------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/email/
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="Treuepunkt <no-reply@treuepunkt.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ----------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# Redis (default: database 0 of the server `make run` starts) or RabbitMQ (amqp://…). kombu's
# filesystem transport is not supported: a JSON decode error stopped its worker while /healthz
# still said "ok", and after its pool processes were killed the worker stopped consuming.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=f"{LOCAL_REDIS_URL}/0")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#caveats
# With Redis, a message a worker took and never acknowledged (the whole worker killed) goes back
# to the queue after the visibility timeout. The sweepers (see celery.py) do not wait for it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport with a fix that keeps the worker alive when Redis goes away
    # mid-task (loyalty_site/broker.py explains it).
    CELERY_BROKER_TRANSPORT = "loyalty_site.broker:Transport"
# Celery's prefork pool with a fix for re-registering an exited pool process after a reconnect
# (loyalty_site/workerpool.py explains it).
CELERY_WORKER_POOL = "loyalty_site.workerpool:TaskPool"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# No task runs forever: at the soft limit SoftTimeLimitExceeded is raised in the task (which ends
# it cleanly: an import rolls back and fails its job with a message), at the hard limit the
# worker's child process is killed (its task is redelivered; sweepers take over). Tasks that
# may need longer set their own (imports below; a campaign's send_batch has a shorter hard one).
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=CELERY_TASK_SOFT_TIME_LIMIT + 60)

# --- REST framework --------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
# The partner API (partners/api/): partner API keys with scopes, one error shape, cursor
# pagination, a per-key rate limit. JSON only, in and out.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["partners.api.authentication.PartnerAPIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["partners.api.permissions.HasScope"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["partners.api.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "partners.api.pagination.PartnerCursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["partners.api.throttling.PartnerKeyRateThrottle"],
    "EXCEPTION_HANDLER": "partners.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Treuepunkt Partner API",
    "DESCRIPTION": (
        "Loyalty program API for POS systems, web shops and CRMs. Authenticate with "
        "`Authorization: Api-Key <key>`; send an `Idempotency-Key` header with every POST that changes data; "
        "errors always look like `{\"code\", \"message\", \"errors\"}`.\n\n"
        "## Which members a partner reaches\n\n"
        "Members belong to the programme, but a key reaches a member only when the partner can show that the "
        "member is **present** or **related**:\n\n"
        "- *present*: the request carries what the till scanned or the member showed: `card_number`, "
        "`customer_number`, or `member_code` (a short-lived code from the member's portal card, shown as text "
        "and QR code; valid for a few minutes, only for this purpose);\n"
        "- *related*: the member enrolled or bought with this partner. A key restricted to stores counts only "
        "enrolments and purchases at its stores, and is restricted the same way everywhere (purchases, "
        "redemptions, vouchers, complaints, survey answers).\n\n"
        "Member ids (`id`, `member_id`) are opaque UUIDs, not database keys, and reach only related members. "
        "For any other member add the presence as a query parameter (`/members/{id}/balance/?card_number=…`) "
        "or look the member up (`GET /members/?card_number=…`; an `email` finds only related members). "
        "Spending points (`POST /redemptions/`) always needs presence: a member id is refused there. A member "
        "out of reach answers 404 exactly like one that does not exist."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "kind" or "status": give each choice set its own name.
    "ENUM_NAME_OVERRIDES": {
        "LedgerEntryKindEnum": "rewards.models.PointEntry.Kind",
        "PointsComponentKindEnum": "rewards.models.PurchasePoints.Kind",
        "RewardKindEnum": "rewards.models.Reward.Kind",
        "MemberStatusEnum": "members.models.Member.Status",
        "RedemptionStatusEnum": "rewards.models.Redemption.Status",
        "ChannelEnum": "rewards.models.Channel",  # the purchase channel keeps its name beside other "channel"s
        "CurrencyEnum": "rewards.models.Currency",  # a paid tier's fee currency is the purchases' one
        "ReferralChannelEnum": "referrals.models.Referral.Channel",
        "ReferralStatusEnum": "referrals.models.Referral.Status",
        "WebhookDeliveryStatusEnum": "partners.models.WebhookDelivery.Status",
        "WebhookEventEnum": "partners.models.WebhookEvent",
        "SurveyKindEnum": "feedback.models.Survey.Kind",
        "ComplaintCategoryEnum": "feedback.models.Complaint.Category",
        "ComplaintStatusEnum": "feedback.models.Complaint.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "partners.api.schema.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Requests per API key ("<n>/<second|minute|hour|day>"; empty: no limit), answered with 429 and
# Retry-After beyond it. Generous by default: a till chain's head office posts in bursts.
LOYALTY_API_RATE = env("LOYALTY_API_RATE", default="60000/minute")
# Presence look-ups (card number, customer number, member code) that match nobody, per API key
# ("<n>/<second|minute|hour|day>"; empty: no limit): beyond it the key's presence look-ups answer
# 429 with Retry-After until the window ends, so numbers can't be guessed. Tills rarely mistype.
LOYALTY_API_PRESENCE_MISSES = env("LOYALTY_API_PRESENCE_MISSES", default="30/minute")
if LOYALTY_API_PRESENCE_MISSES and not re.fullmatch(r"\d+/(second|minute|hour|day|[smhd])",
                                                    LOYALTY_API_PRESENCE_MISSES):
    raise environ.ImproperlyConfigured("LOYALTY_API_PRESENCE_MISSES must look like 30/minute (or be empty).")
# Idempotency records are kept this long (never less than 24 hours), then purged by a beat job.
LOYALTY_API_IDEMPOTENCY_HOURS = env.int("LOYALTY_API_IDEMPOTENCY_HOURS", default=48)
# Webhooks: attempts before a delivery counts as failed, and the first retry's delay (doubling).
LOYALTY_WEBHOOK_MAX_ATTEMPTS = env.int("LOYALTY_WEBHOOK_MAX_ATTEMPTS", default=8)
LOYALTY_WEBHOOK_BACKOFF_SECONDS = env.int("LOYALTY_WEBHOOK_BACKOFF_SECONDS", default=30)
# Plain http://127.0.0.1 / localhost webhook URLs (always allowed while DEBUG): for tests only.
LOYALTY_WEBHOOK_ALLOW_LOCALHOST = env.bool("LOYALTY_WEBHOOK_ALLOW_LOCALHOST", default=False)

# --- Admin (django-unfold) -------------------------------------------------
# https://unfoldadmin.com/docs/configuration/settings/
UNFOLD = {
    "SITE_TITLE": "Treuepunkt",
    "SITE_HEADER": "Treuepunkt",
    "SITE_SYMBOL": "loyalty",
    "SHOW_LANGUAGES": True,
    "DASHBOARD_CALLBACK": "loyalty_site.dashboard.dashboard_callback",
    # Our console templates' styles, as a file (no inline <style>: loyalty_site/csp.py).
    "STYLES": [lambda request: static("console/console.css")],
    # Accessible names for widgets Django's admin scripts leave without one (select2, filters).
    # Chart axes: titles and numbers in the page's language (loyalty_site/dashboard.py).
    "SCRIPTS": [lambda request: static("console/a11y.js"), lambda request: static("console/charts.js")],
    # Grouped by what staff do; each item only for those who may open it (loyalty_site/navigation.py).
    "SIDEBAR": {"show_search": True, "show_all_applications": False,
                "navigation": "loyalty_site.navigation.sidebar_navigation"},
}

# --- Content Security Policy (django-csp) ---------------------------------
# https://django-csp.readthedocs.io/en/latest/configuration.html
# Everything is served by this site: 'self' only, no inline scripts or styles. Third-party
# pages that need more get it for their paths only, with the reason, in loyalty_site/csp.py.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        # default-src also governs the portal's service worker (/sw.js; worker-src falls back to
        # script-src, then default-src) and its web app manifest (manifest-src): this site only.
    },
}

# --- Logging ---------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}

# --- Loyalty program knobs (defaults in one place) -------------------------
LOYALTY_POINTS_EXPIRY_MONTHS = env.int("LOYALTY_POINTS_EXPIRY_MONTHS", default=24)
LOYALTY_RETURN_WINDOW_DAYS = env.int("LOYALTY_RETURN_WINDOW_DAYS", default=0)
# Challenges (engagement): a return this many days after the purchase still undoes its challenge
# progress when points are not held (LOYALTY_RETURN_WINDOW_DAYS 0); missed weeks a streak forgives.
LOYALTY_CHALLENGE_RETURN_DAYS = env.int("LOYALTY_CHALLENGE_RETURN_DAYS", default=30)
LOYALTY_STREAK_GRACE_WEEKS = env.int("LOYALTY_STREAK_GRACE_WEEKS", default=1)
LOYALTY_EXPIRY_WARNING_DAYS = env.int("LOYALTY_EXPIRY_WARNING_DAYS", default=30)
LOYALTY_TIER_WINDOW_DAYS = env.int("LOYALTY_TIER_WINDOW_DAYS", default=365)
# A paid (VIP) membership's fee can be returned this many days after the sale, which ends the
# membership; at least the return window. 14: the withdrawal period of a contract made online
# (§ 355 BGB).
LOYALTY_MEMBERSHIP_RETURN_DAYS = env.int("LOYALTY_MEMBERSHIP_RETURN_DAYS", default=14)
LOYALTY_HEARTBEAT_SECONDS = 15
# Campaign sends, imports and webhook deliveries waiting this long without progress are shown as
# stalled in the console (core/stalls.py); the sweepers run every 5 minutes.
LOYALTY_STALLED_AFTER_MINUTES = env.int("LOYALTY_STALLED_AFTER_MINUTES", default=10)
# Spend statistics are kept in EUR; CHF is converted at this rate (update with the finance team).
LOYALTY_CURRENCY_TO_EUR = {"EUR": "1", "CHF": env("LOYALTY_CHF_TO_EUR", default="1.06")}
# Do the points of a voucher that expired unused come back to the member?
LOYALTY_REFUND_EXPIRED_VOUCHERS = env.bool("LOYALTY_REFUND_EXPIRED_VOUCHERS", default=False)
# Support staff may adjust at most this many points at once; more needs an administrator.
LOYALTY_SUPPORT_ADJUST_LIMIT = env.int("LOYALTY_SUPPORT_ADJUST_LIMIT", default=500)
# ... and at most this many per staff member and day (Europe/Berlin), adjustments and complaint
# goodwill summed as absolute points (0: no daily limit); administrators are exempt from both.
LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT = env.int("LOYALTY_SUPPORT_ADJUST_DAILY_LIMIT", default=2000)
# Staff in the console: a TOTP second factor (on in production) and an idle timeout.
LOYALTY_STAFF_MFA_REQUIRED = env.bool("LOYALTY_STAFF_MFA_REQUIRED", default=False)
LOYALTY_STAFF_IDLE_SECONDS = env.int("LOYALTY_STAFF_IDLE_SECONDS", default=30 * 60)
# Retention (members/privacy.py, docs/privacy.md): inactive members are warned, then erased;
# logs holding personal data are purged after their periods.
LOYALTY_RETENTION_INACTIVE_DAYS = env.int("LOYALTY_RETENTION_INACTIVE_DAYS", default=3 * 365)
LOYALTY_RETENTION_WARNING_DAYS = env.int("LOYALTY_RETENTION_WARNING_DAYS", default=30)
LOYALTY_RETENTION_DELIVERY_DAYS = env.int("LOYALTY_RETENTION_DELIVERY_DAYS", default=90)
LOYALTY_RETENTION_IP_DAYS = env.int("LOYALTY_RETENTION_IP_DAYS", default=90)
LOYALTY_RETENTION_IMPORT_DAYS = env.int("LOYALTY_RETENTION_IMPORT_DAYS", default=90)
# The version of the consent texts in the portal (members/forms.py): change it with the wording,
# every consent record names the version the member saw.
LOYALTY_CONSENT_TEXT_VERSION = env("LOYALTY_CONSENT_TEXT_VERSION", default="2026-01")
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Treuepunkt"
# What one point is worth to the business, for the liability on the dashboard.
LOYALTY_POINT_VALUE_EUR = env("LOYALTY_POINT_VALUE_EUR", default="0.01")
# Imports (transfers/services.py): files up to this size are checked and imported in the console's
# request; larger ones run as Celery tasks with a progress bar (about 100 bytes per customer row).
LOYALTY_IMPORT_SYNC_MAX_BYTES = env.int("LOYALTY_IMPORT_SYNC_MAX_BYTES", default=2_000_000)
# Larger files are refused at upload (1,000,000 customers are about 100 MB of CSV), files with more
# rows when read; a dry run or an import on the worker is stopped at the soft time limit (the
# job fails, nothing is written), its worker process killed at the hard one.
LOYALTY_IMPORT_MAX_BYTES = env.int("LOYALTY_IMPORT_MAX_BYTES", default=256 * 1024 * 1024)
LOYALTY_IMPORT_MAX_ROWS = env.int("LOYALTY_IMPORT_MAX_ROWS", default=2_000_000)
LOYALTY_IMPORT_SOFT_TIME_LIMIT = env.int("LOYALTY_IMPORT_SOFT_TIME_LIMIT", default=60 * 60)
LOYALTY_IMPORT_TIME_LIMIT = env.int("LOYALTY_IMPORT_TIME_LIMIT", default=LOYALTY_IMPORT_SOFT_TIME_LIMIT + 120)

# --- Campaigns (campaigns/services.py explains the sending) ----------------
# Absolute links in e-mails (sign-up confirmation, password reset, unsubscribe, raffle entry) start
# with this (core/public.py), and mails sign with the programme's name.
LOYALTY_PUBLIC_URL = env("LOYALTY_PUBLIC_URL", default="http://127.0.0.1:8000")
LOYALTY_PROGRAMME_NAME = env("LOYALTY_PROGRAMME_NAME", default="Treuepunkt")
# SMS through a pluggable backend (campaigns/sms.py): a gateway's class in production.
LOYALTY_SMS_BACKEND = env("LOYALTY_SMS_BACKEND", default="campaigns.sms.ConsoleSmsBackend")
LOYALTY_SMS_FILE_PATH = env("LOYALTY_SMS_FILE_PATH", default=str(VAR_DIR / "sms" / "messages.jsonl"))
# Web Push (members/push.py, RFC 8030/8291/8292): the VAPID key pair that identifies us to the
# browsers' push services, and a contact (mailto: or https:) they can reach us at. The private key
# as base64url (raw 32 bytes, or DER) or PEM; the public key as the browser's applicationServerKey
# (base64url of the uncompressed point). Without them the portal says push is not available and
# the console refuses push campaigns. Make a pair with `vapid --gen` (py-vapid) or
# `manage.py shell -c "from members.push import vapid_keys_generate; print(vapid_keys_generate())"`.
LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY = env("LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY", default="")
LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY = env("LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY", default="")
LOYALTY_WEBPUSH_VAPID_SUBJECT = env("LOYALTY_WEBPUSH_VAPID_SUBJECT", default="")
# How long a push service keeps a message for a device that is offline (seconds).
LOYALTY_WEBPUSH_TTL_SECONDS = env.int("LOYALTY_WEBPUSH_TTL_SECONDS", default=24 * 60 * 60)
# Frequency cap: at most this many marketing messages per member in so many days (0: no cap).
LOYALTY_CAMPAIGN_CAP_MESSAGES = env.int("LOYALTY_CAMPAIGN_CAP_MESSAGES", default=2)
LOYALTY_CAMPAIGN_CAP_DAYS = env.int("LOYALTY_CAMPAIGN_CAP_DAYS", default=7)
# Messages per Celery task, and after how long a claimed message whose worker is gone counts as
# interrupted (a batch task is killed after half of it).
LOYALTY_CAMPAIGN_BATCH_SIZE = env.int("LOYALTY_CAMPAIGN_BATCH_SIZE", default=200)
LOYALTY_CAMPAIGN_CLAIM_TIMEOUT_SECONDS = env.int("LOYALTY_CAMPAIGN_CLAIM_TIMEOUT_SECONDS", default=900)
# Messages claimed in one transaction and marked sent in one update; also what a crash can
# leave "interrupted" (see campaigns.services).
LOYALTY_CAMPAIGN_SEND_CHUNK = env.int("LOYALTY_CAMPAIGN_SEND_CHUNK", default=50)
# Triggers catch up on events of the last so many hours; birthday messages go out from this
# hour of the member's local day.
LOYALTY_TRIGGER_LOOKBACK_HOURS = env.int("LOYALTY_TRIGGER_LOOKBACK_HOURS", default=48)
LOYALTY_BIRTHDAY_SEND_HOUR = env.int("LOYALTY_BIRTHDAY_SEND_HOUR", default=8)

# --- Partner API: member codes (members.services.member_code_issue) ---------
# How long the code a member shows in the portal proves their presence to a partner.
LOYALTY_MEMBER_CODE_MINUTES = env.int("LOYALTY_MEMBER_CODE_MINUTES", default=5)

# --- Feedback (feedback/services.py) ----------------------------------------
# A member is invited to a survey at most once in so many days (all surveys together).
LOYALTY_SURVEY_THROTTLE_DAYS = env.int("LOYALTY_SURVEY_THROTTLE_DAYS", default=30)
# How long the one-click links of a survey invitation work.
LOYALTY_SURVEY_LINK_DAYS = env.int("LOYALTY_SURVEY_LINK_DAYS", default=14)
# A member who answered through the e-mail link may change the score and the comment this long.
LOYALTY_SURVEY_CHANGE_DAYS = env.int("LOYALTY_SURVEY_CHANGE_DAYS", default=7)
# Complaint SLA: hours until a complaint is due, per category ("points=24;voucher=24"), else the default.
LOYALTY_COMPLAINT_SLA_HOURS = env.int("LOYALTY_COMPLAINT_SLA_HOURS", default=48)
LOYALTY_COMPLAINT_SLA_HOURS_BY_CATEGORY = env.dict("LOYALTY_COMPLAINT_SLA_HOURS_BY_CATEGORY", cast={"value": int},
                                                   default={"points": 24, "voucher": 24})
# Days support has to call back a detractor (follow-up task due date).
LOYALTY_FOLLOW_UP_DUE_DAYS = env.int("LOYALTY_FOLLOW_UP_DUE_DAYS", default=2)

# --- Wallet passes: the card in Apple Wallet and Google Wallet (members/wallet.py) -------------
# Each wallet is offered in the portal only when all of its settings are set; with none set the
# portal says it is not set up yet, with some set `manage.py check` warns (docs/wallet.md).
# Certificates and keys: a file's path or the PEM text itself ("\n" escapes allowed).
# https://developer.apple.com/documentation/walletpasses/building-a-pass
LOYALTY_WALLET_ORGANIZATION_NAME = env("LOYALTY_WALLET_ORGANIZATION_NAME", default=LOYALTY_PROGRAMME_NAME)
LOYALTY_WALLET_APPLE_PASS_TYPE_ID = env("LOYALTY_WALLET_APPLE_PASS_TYPE_ID", default="")  # pass.com.example.loyalty
LOYALTY_WALLET_APPLE_TEAM_ID = env("LOYALTY_WALLET_APPLE_TEAM_ID", default="")
LOYALTY_WALLET_APPLE_CERT = env("LOYALTY_WALLET_APPLE_CERT", default="")  # the Pass Type ID certificate
LOYALTY_WALLET_APPLE_KEY = env("LOYALTY_WALLET_APPLE_KEY", default="")  # its private key
LOYALTY_WALLET_APPLE_KEY_PASSWORD = env("LOYALTY_WALLET_APPLE_KEY_PASSWORD", default="")  # if the key is encrypted
LOYALTY_WALLET_APPLE_WWDR_CERT = env("LOYALTY_WALLET_APPLE_WWDR_CERT", default="")  # Apple's WWDR intermediate
# https://developers.google.com/wallet/retail/loyalty-cards: the issuer's loyalty class, created once
# in the Google Pay & Wallet Console, and a service account's key (RS256) that signs the save links.
LOYALTY_WALLET_GOOGLE_ISSUER_ID = env("LOYALTY_WALLET_GOOGLE_ISSUER_ID", default="")
LOYALTY_WALLET_GOOGLE_CLASS_ID = env("LOYALTY_WALLET_GOOGLE_CLASS_ID", default="")
LOYALTY_WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL = env("LOYALTY_WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL", default="")
LOYALTY_WALLET_GOOGLE_PRIVATE_KEY = env("LOYALTY_WALLET_GOOGLE_PRIVATE_KEY", default="")
# The demo's throwaway credentials (members/wallet_demo.py): `seed_demo` writes them into this
# folder when it is set (settings/local.py sets it); LOYALTY_WALLET_DEMO makes the portal say so.
LOYALTY_WALLET_DEMO_DIR = ""
LOYALTY_WALLET_DEMO = False
