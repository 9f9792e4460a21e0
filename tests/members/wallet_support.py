"""Wallet credentials for tests: made with `cryptography` in the test run (members.wallet_demo), never
committed; `configure_wallets` points the LOYALTY_WALLET_* settings at them the ways production may
(a file's path, PEM text in the setting, Apple's DER .cer, an encrypted key with its password)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from members.wallet_demo import DemoCredentials, certificate_pem, key_pem, make_test_credentials

KEY_PASSWORD = "pass-key-secret"  # a test key's


@lru_cache(maxsize=1)
def credentials() -> DemoCredentials:
    """One set per test process: four RSA keys take about a second to make."""
    return make_test_credentials()


def configure_wallets(settings, folder: Path, made: DemoCredentials | None = None, *, apple: bool = True,
                      google: bool = True) -> DemoCredentials:
    made = made or credentials()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pass-key.pem").write_bytes(key_pem(made.key, KEY_PASSWORD))
    (folder / "wwdr.cer").write_bytes(made.wwdr.public_bytes(serialization.Encoding.DER))
    (folder / "root.pem").write_bytes(certificate_pem(made.root))
    if apple:
        settings.LOYALTY_WALLET_APPLE_PASS_TYPE_ID = "pass.example.treuepunkt.test"
        settings.LOYALTY_WALLET_APPLE_TEAM_ID = "TEAM123456"
        settings.LOYALTY_WALLET_APPLE_CERT = certificate_pem(made.certificate).decode()  # the PEM text itself
        settings.LOYALTY_WALLET_APPLE_KEY = str(folder / "pass-key.pem")
        settings.LOYALTY_WALLET_APPLE_KEY_PASSWORD = KEY_PASSWORD
        settings.LOYALTY_WALLET_APPLE_WWDR_CERT = str(folder / "wwdr.cer")
    if google:
        settings.LOYALTY_WALLET_GOOGLE_ISSUER_ID = "3388000000012345678"
        settings.LOYALTY_WALLET_GOOGLE_CLASS_ID = "treuepunkt_card"
        settings.LOYALTY_WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL = "wallet@treuepunkt-test.iam.gserviceaccount.com"
        # As Google's JSON key file has it: one line with "\n" escapes.
        settings.LOYALTY_WALLET_GOOGLE_PRIVATE_KEY = key_pem(made.google_key).decode().replace("\n", "\\n")
    return made
