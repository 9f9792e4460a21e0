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

def _demo_vapid_keys(path) -> dict[str, str]:
    """The demo's Web Push key pair (members/push.py): made on the first start and kept under var/,
    so browsers that subscribed stay subscribed across restarts. Production sets its own pair."""
    import base64
    import json

    if path.exists():
        return json.loads(path.read_text())
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    keys = {"private": encode(key.private_numbers().private_value.to_bytes(32, "big")),
            "public": encode(key.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.UncompressedPoint))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys))
    path.chmod(0o600)
    return keys


# Web Push works in the demo without setup: a generated key pair unless the environment names one.
if not env("LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY", default=""):
    _vapid = _demo_vapid_keys(VAR_DIR / "webpush-vapid.json")
    LOYALTY_WEBPUSH_VAPID_PRIVATE_KEY, LOYALTY_WEBPUSH_VAPID_PUBLIC_KEY = _vapid["private"], _vapid["public"]
    LOYALTY_WEBPUSH_VAPID_SUBJECT = env("LOYALTY_WEBPUSH_VAPID_SUBJECT", default="mailto:demo@treuepunkt.example")
