"""Throwaway wallet credentials for the demo (`make run`) and the tests: a test root CA standing in
for Apple's, a "WWDR" intermediate it signed, a pass certificate with its key, and an RSA key
standing in for a Google service account's. Everything is made here with `cryptography`; no
real Apple or Google credential is involved, so a real phone refuses these passes (the portal
says so in the demo: LOYALTY_WALLET_DEMO).

`seed_demo` writes them once under var/wallet-demo/ (untracked); settings/local.py points the
LOYALTY_WALLET_* settings there when the files exist and the environment sets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.utils import timezone

DEMO_PASS_TYPE_ID = "pass.example.treuepunkt.demo"  # noqa: S105 - an identifier, no secret
DEMO_TEAM_ID = "DEMO000000"
DEMO_GOOGLE_ISSUER_ID = "3388000000000000000"
DEMO_GOOGLE_CLASS_ID = "treuepunkt_demo"
DEMO_GOOGLE_EMAIL = "wallet-demo@treuepunkt-demo.iam.gserviceaccount.com"
# File names under the demo folder, as settings/local.py expects them.
FILES = {"cert": "pass-certificate.pem", "key": "pass-key.pem", "wwdr": "wwdr.pem", "root": "test-root-ca.pem",
         "google_key": "google-service-account-key.pem"}


@dataclass(frozen=True)
class DemoCredentials:
    root: x509.Certificate
    wwdr: x509.Certificate
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    google_key: rsa.RSAPrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Treuepunkt test credentials")])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _issue(subject: str, key, *, issuer: x509.Certificate | None, issuer_key, ca: bool, days: int):
    now = timezone.now()
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(issuer.subject if issuer else _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def make_test_credentials(*, pass_days: int = 365) -> DemoCredentials:
    """A root CA, an intermediate it signed, a pass certificate the intermediate signed (valid for
    `pass_days`; negative: already expired), and a Google stand-in key. Takes about a second."""
    root_key, wwdr_key, pass_key = _key(), _key(), _key()
    root = _issue("Test Root CA", root_key, issuer=None, issuer_key=root_key, ca=True, days=3650)
    wwdr = _issue("Test WWDR Intermediate", wwdr_key, issuer=root, issuer_key=root_key, ca=True, days=3650)
    certificate = _issue(f"Pass Type ID: {DEMO_PASS_TYPE_ID}", pass_key, issuer=wwdr, issuer_key=wwdr_key,
                         ca=False, days=pass_days)
    return DemoCredentials(root=root, wwdr=wwdr, certificate=certificate, key=pass_key, google_key=_key())


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key, password: str = "") -> bytes:
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_demo_credentials(directory: Path) -> bool:
    """Writes the demo's credentials into `directory` unless they are there and good for another
    month (a demo kept for a year would otherwise lose its wallets); True if written now."""
    if all((directory / name).exists() for name in FILES.values()) and _valid_for_a_month(directory / FILES["cert"]):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    credentials = make_test_credentials()
    contents = {"cert": certificate_pem(credentials.certificate), "key": key_pem(credentials.key),
                "wwdr": certificate_pem(credentials.wwdr), "root": certificate_pem(credentials.root),
                "google_key": key_pem(credentials.google_key)}
    for kind, data in contents.items():
        path = directory / FILES[kind]
        path.write_bytes(data)
        path.chmod(0o600)
    return True


def _valid_for_a_month(path: Path) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return False
    return certificate.not_valid_after_utc > timezone.now() + timedelta(days=30)


def demo_settings(directory: Path) -> dict[str, object]:
    """The LOYALTY_WALLET_* settings for the credentials in `directory` (settings/local.py)."""
    return {
        "LOYALTY_WALLET_APPLE_PASS_TYPE_ID": DEMO_PASS_TYPE_ID,
        "LOYALTY_WALLET_APPLE_TEAM_ID": DEMO_TEAM_ID,
        "LOYALTY_WALLET_APPLE_CERT": str(directory / FILES["cert"]),
        "LOYALTY_WALLET_APPLE_KEY": str(directory / FILES["key"]),
        "LOYALTY_WALLET_APPLE_WWDR_CERT": str(directory / FILES["wwdr"]),
        "LOYALTY_WALLET_GOOGLE_ISSUER_ID": DEMO_GOOGLE_ISSUER_ID,
        "LOYALTY_WALLET_GOOGLE_CLASS_ID": DEMO_GOOGLE_CLASS_ID,
        "LOYALTY_WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL": DEMO_GOOGLE_EMAIL,
        "LOYALTY_WALLET_GOOGLE_PRIVATE_KEY": str(directory / FILES["google_key"]),
        "LOYALTY_WALLET_DEMO": True,
    }


def seed_wallet_demo() -> bool:
    """`seed_demo`'s part: the credentials in LOYALTY_WALLET_DEMO_DIR (unset, as in the tests: none)."""
    if not settings.LOYALTY_WALLET_DEMO_DIR:
        return False
    return write_demo_credentials(Path(settings.LOYALTY_WALLET_DEMO_DIR))
