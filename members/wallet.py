"""The member's card in the phone's wallet: an Apple Wallet pass (.pkpass) and a Google Wallet
save link, both made from configuration (the LOYALTY_WALLET_* settings, docs/wallet.md).

A wallet is offered only when all of its settings are set and its credentials load: otherwise
`apple_status()` / `google_status()` say what is missing or wrong (for `manage.py check` and the
console) and the portal shows a notice instead of the button. Nothing here raises at a member:
the views turn `WalletUnavailable` (members.errors) into a page.

Both passes carry the card number as the portal's card does (Code 128 for every till scanner,
QR where Code 128 is not shown: Apple Watch), the member's name, balance and tier, as of the
download: there is no pass update web service, so the balance on a saved pass is refreshed by
adding the pass again (same serial number: the wallet replaces it).

The serial number (Apple) and object id (Google) is a UUID derived from the member's random API
id: stable for the member (a new card number or a merge keeps the pass), not guessable, and not
the API id itself, which partners use.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import logging
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from django.conf import settings
from django.core import checks
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.public import public_url

from .errors import WalletUnavailable
from .models import Member

logger = logging.getLogger(__name__)

APPLE_SETTINGS = ("LOYALTY_WALLET_APPLE_PASS_TYPE_ID", "LOYALTY_WALLET_APPLE_TEAM_ID", "LOYALTY_WALLET_APPLE_CERT",
                  "LOYALTY_WALLET_APPLE_KEY", "LOYALTY_WALLET_APPLE_WWDR_CERT")
APPLE_OPTIONAL = ("LOYALTY_WALLET_APPLE_KEY_PASSWORD",)  # an unencrypted key has none
GOOGLE_SETTINGS = ("LOYALTY_WALLET_GOOGLE_ISSUER_ID", "LOYALTY_WALLET_GOOGLE_CLASS_ID",
                   "LOYALTY_WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL", "LOYALTY_WALLET_GOOGLE_PRIVATE_KEY")

PKPASS_CONTENT_TYPE = "application/vnd.apple.pkpass"
GOOGLE_SAVE_URL = "https://pay.google.com/gp/v/save/"
IMAGES_DIR = Path(__file__).resolve().parent / "wallet_images"
PASS_IMAGES = ("icon.png", "icon@2x.png", "icon@3x.png", "logo.png", "logo@2x.png")
# Fixed forever: changing it would give every member a second pass instead of replacing the first.
_SERIAL_NAMESPACE = uuid.UUID("5d0c1c52-3f7e-4d4e-9a51-5b0f3c9e8a21")
# The portal card's colours (static/portal/portal.css, .loyalty-card and .tier-bg--N) by tier rank.
_TIER_COLOURS = {0: (7, 64, 52), 1: (74, 85, 97), 2: (122, 90, 0), 3: (29, 31, 35)}


class State(enum.StrEnum):
    OFF = "off"  # none of its settings: the wallet is simply not used
    INCOMPLETE = "incomplete"  # some settings set, some missing
    BROKEN = "broken"  # all set, but a certificate or key does not load or fit
    READY = "ready"


@dataclass(frozen=True)
class Status:
    wallet: str  # "Apple Wallet", "Google Wallet" (brand names, not translated)
    state: State
    problem: str = ""  # what is missing or wrong, for staff
    expires_at: datetime | None = None  # the Apple pass certificate's end

    @property
    def ready(self) -> bool:
        return self.state is State.READY


def wallet_serial(member: Member) -> str:
    return str(uuid.uuid5(_SERIAL_NAMESPACE, str(member.public_id)))


def wallet_offer() -> dict:
    """What the portal's card shows: a button per ready wallet, a notice for the others."""
    return {"apple": apple_status().ready, "google": google_status().ready, "demo": settings.LOYALTY_WALLET_DEMO}


# --- Credentials -----------------------------------------------------------------------------

def _values(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(getattr(settings, name, "") or "").strip() for name in names)


def _material(value: str) -> bytes:
    """A certificate or key given inline (PEM text; "\\n" escapes allowed, as environment variables and
    Google's JSON key files carry them) or as a file's path. Error messages never repeat a value
    that is not a plain path: it may be a key."""
    if "-----BEGIN" in value or "\n" in value or "\\n" in value or len(value) > 1024:
        return value.replace("\\n", "\n").encode()
    try:
        return Path(value).expanduser().read_bytes()
    except OSError as error:
        raise ValueError(_("The file %(path)s cannot be read: %(reason)s")
                         % {"path": value, "reason": error.strerror or error.__class__.__name__}) from error


def _certificate(value: str) -> x509.Certificate:
    data = _material(value)
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)  # Apple hands out the WWDR certificate as DER (.cer)


def _private_key(value: str, password: str = ""):
    data = _material(value)
    secret = password.encode() if password else None
    if b"-----BEGIN" in data:
        return serialization.load_pem_private_key(data, secret)
    return serialization.load_der_private_key(data, secret)


@dataclass(frozen=True)
class AppleCredentials:
    pass_type_id: str
    team_id: str
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    wwdr: x509.Certificate


@dataclass(frozen=True)
class GoogleCredentials:
    issuer_id: str
    class_id: str
    service_account_email: str
    key: rsa.RSAPrivateKey


def _public_bytes(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# Cached by the settings' values (a test's override_settings gets its own entry); a renewed
# certificate at the same path is read after a restart, like any setting. Errors are not cached.
@lru_cache(maxsize=8)
def _apple_credentials(values: tuple[str, ...]) -> AppleCredentials:
    pass_type_id, team_id, cert, key_value, wwdr_value, password = values
    certificate = _certificate(cert)
    key = _private_key(key_value, password)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(_("The pass key must be an RSA or EC key."))
    if _public_bytes(certificate.public_key()) != _public_bytes(key.public_key()):
        raise ValueError(_("The pass certificate does not belong to the pass key."))
    if certificate.not_valid_after_utc <= timezone.now():
        raise ValueError(_("The pass certificate expired on %(date)s.")
                         % {"date": f"{certificate.not_valid_after_utc:%Y-%m-%d}"})
    return AppleCredentials(pass_type_id=pass_type_id, team_id=team_id, certificate=certificate, key=key,
                            wwdr=_certificate(wwdr_value))


@lru_cache(maxsize=8)
def _google_credentials(values: tuple[str, ...]) -> GoogleCredentials:
    issuer_id, class_id, email, key_value = values
    if not issuer_id.isdigit():
        raise ValueError(_("The Google issuer id is a number."))
    if "@" not in email:
        raise ValueError(_("The service account's e-mail address is not an e-mail address."))
    key = _private_key(key_value)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(_("The service account's key must be an RSA key."))
    # The console shows the class as "<issuer id>.<class>"; both spellings are accepted.
    class_id = class_id if "." in class_id else f"{issuer_id}.{class_id}"
    return GoogleCredentials(issuer_id=issuer_id, class_id=class_id, service_account_email=email, key=key)


def _status(wallet: str, required: tuple[str, ...], optional: tuple[str, ...], load) -> tuple[Status, object]:
    values = _values(required + optional)
    missing = [name for name, value in zip(required, values, strict=False) if not value]
    if len(missing) == len(required) and not any(values[len(required):]):
        return Status(wallet, State.OFF), None
    if missing:
        return Status(wallet, State.INCOMPLETE, _("Missing: %(names)s") % {"names": ", ".join(missing)}), None
    try:
        credentials = load(values)
    except Exception as error:  # unreadable file, bad PEM, wrong password, mismatch, unsupported key …
        # … whatever it is, the portal and `check` must go on: the status carries it to staff.
        if not isinstance(error, ValueError | TypeError | OSError):
            logger.exception("%s credentials do not load", wallet)
        return Status(wallet, State.BROKEN, str(error) or error.__class__.__name__), None
    expires_at = getattr(getattr(credentials, "certificate", None), "not_valid_after_utc", None)
    return Status(wallet, State.READY, expires_at=expires_at), credentials


def apple_status() -> Status:
    return _status("Apple Wallet", APPLE_SETTINGS, APPLE_OPTIONAL, _apple_credentials)[0]


def google_status() -> Status:
    return _status("Google Wallet", GOOGLE_SETTINGS, (), _google_credentials)[0]


def _ready_credentials(wallet: str, required, optional, load):
    status, credentials = _status(wallet, required, optional, load)
    if not status.ready:
        raise WalletUnavailable(status)
    return credentials


# --- Apple Wallet ----------------------------------------------------------------------------

def _grouped(card_number: str) -> str:
    return " ".join(card_number[index:index + 4] for index in range(0, len(card_number), 4))


def _field(key: str, label: str, value, **extra) -> dict:
    return {"key": key, "label": label, "value": value, **extra}


def apple_pass_json(member: Member, *, pass_type_id: str, team_id: str) -> dict:
    """pass.json of a store card, in the active language (the caller chooses the member's)."""
    rank = member.tier.rank if member.tier else 0
    colour = "rgb({}, {}, {})".format(*_TIER_COLOURS.get(rank, _TIER_COLOURS[0]))
    barcode = {"message": member.card_number, "messageEncoding": "iso-8859-1", "altText": member.card_number}
    card_url = public_url(reverse("portal:card"))
    return {
        "formatVersion": 1,
        "passTypeIdentifier": pass_type_id,
        "teamIdentifier": team_id,
        "serialNumber": wallet_serial(member),
        "organizationName": settings.LOYALTY_WALLET_ORGANIZATION_NAME,
        "description": _("%(organization)s loyalty card") % {"organization": settings.LOYALTY_WALLET_ORGANIZATION_NAME},
        "logoText": settings.LOYALTY_WALLET_ORGANIZATION_NAME,
        "backgroundColor": colour,
        "foregroundColor": "rgb(255, 255, 255)",
        "labelColor": "rgb(242, 169, 0)",
        "sharingProhibited": True,  # the card collects the member's points: not to be passed on
        # Code 128 first, what every till scanner reads; Apple Watch cannot show it and takes the QR.
        "barcodes": [{**barcode, "format": "PKBarcodeFormatCode128"}, {**barcode, "format": "PKBarcodeFormatQR"}],
        "storeCard": {
            "headerFields": [_field("tier", _("Tier"), member.tier.name if member.tier else "–")],
            "primaryFields": [_field("balance", _("Points"), member.points_balance,
                                     numberStyle="PKNumberStyleDecimal")],
            "secondaryFields": [_field("name", _("Name"), member.full_name or "–")],
            "auxiliaryFields": [_field("card", _("Card number"), _grouped(member.card_number))],
            "backFields": [
                _field("as_of", _("Balance as of"), timezone.now().isoformat(timespec="seconds"),
                       dateStyle="PKDateStyleMedium", timeStyle="PKDateStyleShort"),
                _field("refresh", _("Updating the balance"),
                       _("Add the card again from the portal to bring the balance up to date.")),
                _field("portal", _("Your card in the portal"), card_url),
            ],
        },
    }


def _sign_manifest(manifest: bytes, credentials: AppleCredentials) -> bytes:
    """The detached PKCS #7 signature of manifest.json, in DER, with the WWDR intermediate.

    Binary: without it the text would be signed with CRLF line ends (S/MIME's canonical form) and
    the signature would not match the file's bytes. Signed attributes stay in: Apple asks for the
    S/MIME signing-time attribute (as `openssl smime -sign` and Apple's signpass write it); only
    the S/MIME capabilities are left out."""
    return (pkcs7.PKCS7SignatureBuilder().set_data(manifest)
            .add_signer(credentials.certificate, credentials.key, hashes.SHA256())
            .add_certificate(credentials.wwdr)
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary,
                                               pkcs7.PKCS7Options.NoCapabilities]))


def apple_pass(member: Member) -> bytes:
    """The member's .pkpass (a ZIP): pass.json, the images, manifest.json with the SHA-1 of each
    file (Apple's format), and the signature of the manifest."""
    credentials: AppleCredentials = _ready_credentials("Apple Wallet", APPLE_SETTINGS, APPLE_OPTIONAL,
                                                       _apple_credentials)
    with translation.override(member.language):
        pass_json = apple_pass_json(member, pass_type_id=credentials.pass_type_id, team_id=credentials.team_id)
    files = {"pass.json": json.dumps(pass_json, ensure_ascii=False, indent=1).encode()}
    files.update({name: (IMAGES_DIR / name).read_bytes() for name in PASS_IMAGES})
    manifest = json.dumps({name: hashlib.sha1(data, usedforsecurity=False).hexdigest()
                           for name, data in files.items()}, indent=1).encode()
    try:
        signature = _sign_manifest(manifest, credentials)
    except (ValueError, TypeError) as error:  # a key the signer refuses: say so, don't fail the page
        logger.exception("Apple Wallet pass not signed")
        raise WalletUnavailable(Status("Apple Wallet", State.BROKEN, str(error))) from error
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (*files.items(), ("manifest.json", manifest), ("signature", signature)):
            archive.writestr(name, data)
    return buffer.getvalue()


def apple_pass_filename(member: Member) -> str:
    return f"treuepunkt-{member.customer_number}.pkpass"


# --- Google Wallet ---------------------------------------------------------------------------

def google_loyalty_object(member: Member, credentials: GoogleCredentials) -> dict:
    """The loyaltyObject of the save link (REST reference: walletobjects loyaltyobject)."""
    with translation.override(member.language):
        tier = {"id": "tier", "header": _("Tier"), "body": member.tier.name if member.tier else "–"}
        points_label = _("Points")
    return {
        "id": f"{credentials.issuer_id}.{wallet_serial(member)}",
        "classId": credentials.class_id,
        "state": "ACTIVE",
        "accountId": member.card_number,
        "accountName": member.full_name or member.card_number,
        "barcode": {"type": "CODE_128", "value": member.card_number, "alternateText": member.card_number},
        "loyaltyPoints": {"label": points_label, "balance": {"int": member.points_balance}},
        "textModulesData": [tier],
    }


def google_save_url(member: Member) -> str:
    """https://pay.google.com/gp/v/save/<JWT>: the loyalty object signed (RS256) with the service
    account's key. Google creates or updates the object when the member opens the link; no call
    from here is needed."""
    import jwt  # PyJWT; imported here, only this link needs it

    credentials: GoogleCredentials = _ready_credentials("Google Wallet", GOOGLE_SETTINGS, (), _google_credentials)
    public = urlsplit(settings.LOYALTY_PUBLIC_URL)
    claims = {
        "iss": credentials.service_account_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(timezone.now().timestamp()),
        "origins": [f"{public.scheme}://{public.netloc}"],
        "payload": {"loyaltyObjects": [google_loyalty_object(member, credentials)]},
    }
    return GOOGLE_SAVE_URL + jwt.encode(claims, credentials.key, algorithm="RS256")


# --- System check ----------------------------------------------------------------------------

def check_wallet_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A Warning (never an Error: the site works without wallets) when a wallet is half set up or
    its credentials fail; nothing when none of its settings is set."""
    found = []
    for status, code in ((apple_status(), "members.W101"), (google_status(), "members.W102")):
        if status.state is State.INCOMPLETE:
            found.append(checks.Warning(
                f"{status.wallet} passes are partly configured. {status.problem}",
                hint="Set all of these settings or none: until then the portal says the wallet is not set up.",
                id=code))
        elif status.state is State.BROKEN:
            found.append(checks.Warning(
                f"{status.wallet} passes are configured, but the credentials fail: {status.problem}",
                hint="Check the certificate and key settings (a file's path or the PEM text).", id=code))
    return found
