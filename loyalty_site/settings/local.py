"""Local development and the `make run` demo: the PostgreSQL cluster and Redis server that `make run`
starts under var/ (scripts/localstack.sh), the defaults of base.py."""

from .base import *  # noqa: F403
from .base import STATIC_ROOT, VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# E-mails go to the console and to files under var/mail so flows can be followed locally.
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="core.mail.ConsoleAndFileEmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # static files come from the finders while DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Wallet passes in the demo: `seed_demo` writes throwaway test credentials into this folder
# (members/wallet_demo.py); the portal offers both wallets with them, saying they are a demo's,
# unless the environment configures a real wallet (LOYALTY_WALLET_* in base.py, docs/wallet.md).
LOYALTY_WALLET_DEMO_DIR = str(VAR_DIR / "wallet-demo")
if ((VAR_DIR / "wallet-demo" / "pass-certificate.pem").exists()
        and not env("LOYALTY_WALLET_APPLE_PASS_TYPE_ID", default="") and not env("LOYALTY_WALLET_GOOGLE_ISSUER_ID",
                                                                                 default="")):
    from members.wallet_demo import demo_settings

    globals().update(demo_settings(VAR_DIR / "wallet-demo"))
