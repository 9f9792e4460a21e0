"""The card in the phone's wallet (members/wallet.py): the Apple Wallet pass and the Google Wallet
save link from configuration, and what happens without it (notices, 404, check warnings)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from django.core.management import call_command
from django.urls import reverse

from members import wallet
from members.services import member_link_or_enrol
from members.wallet_demo import make_test_credentials, seed_wallet_demo, write_demo_credentials
from rewards.ledger import points_credit
from tests import factories
from tests.members.wallet_support import configure_wallets

APPLE_URL = "portal:wallet_apple"
GOOGLE_URL = "portal:wallet_google"


def _portal_member(email: str, **names):
    user = factories.UserFactory(email=email)
    member = member_link_or_enrol(user=user, email=email)
    for field, value in names.items():
        setattr(member, field, value)
    member.save(update_fields=list(names))
    return member


@pytest.fixture
def anna(tiers):
    member = _portal_member("anna@example.org", first_name="Anna", last_name="Apfel", language="de")
    points_credit(member_id=member.pk, points=1234, reason="Willkommen")
    member.refresh_from_db()
    return member


@pytest.fixture
def bernd(tiers):
    member = _portal_member("bernd@example.org", first_name="Bernd", last_name="Birne")
    points_credit(member_id=member.pk, points=777, reason="Bonus")
    return member


@pytest.fixture
def wallets(settings, tmp_path):
    return configure_wallets(settings, tmp_path / "wallet")


def _unzipped(response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- Apple Wallet ----------------------------------------------------------------------------

def test_apple_pass_is_a_pkpass_download_of_the_members_own_card(client, anna, wallets):
    client.force_login(anna.user)
    response = client.get(reverse(APPLE_URL))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apple.pkpass"
    assert response["Content-Disposition"] == f'attachment; filename="treuepunkt-{anna.customer_number}.pkpass"'
    assert response["Cache-Control"] == "no-store"
    files = _unzipped(response)
    assert set(files) == {"pass.json", "manifest.json", "signature", "icon.png", "icon@2x.png", "icon@3x.png",
                          "logo.png", "logo@2x.png"}
    assert files["icon.png"] == (wallet.IMAGES_DIR / "icon.png").read_bytes()  # the repository's image


def test_apple_pass_json_carries_card_number_name_balance_and_tier(client, anna, wallets):
    client.force_login(anna.user)
    data = json.loads(_unzipped(client.get(reverse(APPLE_URL)))["pass.json"])
    assert data["formatVersion"] == 1
    assert data["passTypeIdentifier"] == "pass.example.treuepunkt.test"
    assert data["teamIdentifier"] == "TEAM123456"
    assert data["organizationName"] == "Treuepunkt"
    assert data["serialNumber"] == wallet.wallet_serial(anna)
    assert data["description"]
    assert [(code["format"], code["message"]) for code in data["barcodes"]] == [
        ("PKBarcodeFormatCode128", anna.card_number), ("PKBarcodeFormatQR", anna.card_number)]
    fields = {field["key"]: field for part in ("headerFields", "primaryFields", "secondaryFields",
                                               "auxiliaryFields", "backFields")
              for field in data["storeCard"][part]}
    assert fields["balance"]["value"] == 1234
    assert fields["name"]["value"] == "Anna Apfel"
    assert fields["tier"]["value"] == anna.tier.name
    assert fields["card"]["value"].replace(" ", "") == anna.card_number


def test_apple_pass_manifest_holds_the_sha1_of_every_file(client, anna, wallets):
    client.force_login(anna.user)
    files = _unzipped(client.get(reverse(APPLE_URL)))
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name], usedforsecurity=False).hexdigest() == digest


def test_apple_pass_signature_verifies_with_openssl_against_the_test_ca(client, anna, wallets, tmp_path):
    """Detached, over the manifest's exact bytes (no CRLF canonicalisation), chained through the
    WWDR stand-in to the test root, with the signing-time attribute Apple asks for."""
    client.force_login(anna.user)
    files = _unzipped(client.get(reverse(APPLE_URL)))
    for name in ("manifest.json", "signature"):
        (tmp_path / name).write_bytes(files[name])
    verify = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "signature"), "-binary",
         "-content", str(tmp_path / "manifest.json"), "-CAfile", str(tmp_path / "wallet" / "root.pem"),
         "-purpose", "any", "-out", "/dev/null"], capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr
    printed = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in",
                              str(tmp_path / "signature")], capture_output=True, text=True, check=True).stdout
    assert "signingTime" in printed
    assert "eContent: <ABSENT>" in printed  # detached: the manifest is not inside
    certificates = pkcs7.load_der_pkcs7_certificates(files["signature"])
    assert {certificate.subject for certificate in certificates} == {wallets.certificate.subject,
                                                                     wallets.wwdr.subject}


def test_a_tampered_manifest_fails_the_signature(client, anna, wallets, tmp_path):
    client.force_login(anna.user)
    files = _unzipped(client.get(reverse(APPLE_URL)))
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"].replace(b'"pass.json"', b'"pass.JSON"'))
    (tmp_path / "signature").write_bytes(files["signature"])
    verify = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "signature"), "-binary",
         "-content", str(tmp_path / "manifest.json"), "-noverify", "-out", "/dev/null"],
        capture_output=True, check=False)
    assert verify.returncode != 0


def test_pass_serial_is_stable_per_member_and_not_the_api_id(anna, bernd):
    assert wallet.wallet_serial(anna) == wallet.wallet_serial(anna)
    assert wallet.wallet_serial(anna) != wallet.wallet_serial(bernd)
    assert wallet.wallet_serial(anna) != str(anna.public_id)
    assert anna.card_number not in wallet.wallet_serial(anna)


def test_a_member_downloads_only_their_own_card(client, anna, bernd, wallets):
    client.force_login(anna.user)
    response = client.get(reverse(APPLE_URL), {"member": bernd.pk, "card": bernd.card_number})
    pass_json = _unzipped(response)["pass.json"].decode()
    assert anna.card_number in pass_json
    assert bernd.card_number not in pass_json and "Bernd" not in pass_json
    save_url = client.get(reverse(GOOGLE_URL), {"member": bernd.pk})["Location"]
    claims = jwt.decode(save_url.removeprefix(wallet.GOOGLE_SAVE_URL), wallets.google_key.public_key(),
                        algorithms=["RS256"], audience="google")
    assert claims["payload"]["loyaltyObjects"][0]["accountId"] == anna.card_number


def test_wallet_downloads_need_a_member_login(client, anna, wallets):
    for name in (APPLE_URL, GOOGLE_URL):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(factories.StaffUserFactory())
    assert client.get(reverse(APPLE_URL)).status_code == 403  # staff work in the console, not the portal


# --- Google Wallet ---------------------------------------------------------------------------

def test_google_save_link_is_a_jwt_with_the_loyalty_object_signed_by_the_service_account(client, anna, wallets):
    client.force_login(anna.user)
    response = client.get(reverse(GOOGLE_URL))
    assert response.status_code == 302
    assert response["Location"].startswith("https://pay.google.com/gp/v/save/")
    token = response["Location"].removeprefix(wallet.GOOGLE_SAVE_URL)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, wallets.google_key.public_key(), algorithms=["RS256"], audience="google")
    assert claims["iss"] == "wallet@treuepunkt-test.iam.gserviceaccount.com"
    assert claims["typ"] == "savetowallet"
    [card] = claims["payload"]["loyaltyObjects"]
    assert card["id"] == f"3388000000012345678.{wallet.wallet_serial(anna)}"
    assert card["classId"] == "3388000000012345678.treuepunkt_card"  # the issuer prefix added
    assert card["accountId"] == anna.card_number
    assert card["accountName"] == "Anna Apfel"
    assert card["barcode"] == {"type": "CODE_128", "value": anna.card_number, "alternateText": anna.card_number}
    assert card["loyaltyPoints"]["balance"] == {"int": 1234}
    assert card["textModulesData"][0]["body"] == anna.tier.name


def test_google_save_link_does_not_verify_with_another_key(client, anna, wallets):
    client.force_login(anna.user)
    token = client.get(reverse(GOOGLE_URL))["Location"].removeprefix(wallet.GOOGLE_SAVE_URL)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, wallets.key.public_key(), algorithms=["RS256"], audience="google")


def test_google_class_id_given_with_its_issuer_prefix_is_kept(client, anna, wallets, settings):
    settings.LOYALTY_WALLET_GOOGLE_CLASS_ID = "3388000000012345678.treuepunkt_card"
    client.force_login(anna.user)
    token = client.get(reverse(GOOGLE_URL))["Location"].removeprefix(wallet.GOOGLE_SAVE_URL)
    card = jwt.decode(token, options={"verify_signature": False})["payload"]["loyaltyObjects"][0]
    assert card["classId"] == "3388000000012345678.treuepunkt_card"


# --- Portal pages ----------------------------------------------------------------------------

def test_card_page_and_dashboard_offer_both_wallets_when_configured(client, anna, wallets):
    client.force_login(anna.user)
    for page in ("portal:card", "portal:dashboard"):
        html = client.get(reverse(page)).content.decode()
        assert f'href="{reverse(APPLE_URL)}"' in html and "Add to Apple Wallet" in html
        assert f'href="{reverse(GOOGLE_URL)}"' in html and "Add to Google Wallet" in html
        assert "not set up yet" not in html


def test_without_settings_the_card_page_says_so_instead_of_offering_buttons(client, anna):
    client.force_login(anna.user)
    html = client.get(reverse("portal:card")).content.decode()
    assert "Apple Wallet is not set up yet" in html and "Google Wallet is not set up yet" in html
    assert reverse(APPLE_URL) not in html and reverse(GOOGLE_URL) not in html
    dashboard = client.get(reverse("portal:dashboard")).content.decode()
    assert reverse(APPLE_URL) not in dashboard and "not set up yet" not in dashboard


def test_without_settings_the_downloads_answer_404_with_a_clear_page(client, anna):
    client.force_login(anna.user)
    apple = client.get(reverse(APPLE_URL))
    assert apple.status_code == 404
    assert "Apple Wallet is not set up yet" in apple.content.decode()
    google = client.get(reverse(GOOGLE_URL))
    assert google.status_code == 404
    assert "Google Wallet is not set up yet" in google.content.decode()


def test_only_the_configured_wallet_is_offered(client, anna, settings, tmp_path):
    configure_wallets(settings, tmp_path, apple=False)
    client.force_login(anna.user)
    html = client.get(reverse("portal:card")).content.decode()
    assert "Apple Wallet is not set up yet" in html and reverse(GOOGLE_URL) in html
    assert client.get(reverse(APPLE_URL)).status_code == 404


def test_a_half_configured_wallet_is_not_offered(client, anna, settings, tmp_path):
    configure_wallets(settings, tmp_path)
    settings.LOYALTY_WALLET_APPLE_KEY = ""  # certificate without its key
    client.force_login(anna.user)
    assert "Apple Wallet is not set up yet" in client.get(reverse("portal:card")).content.decode()
    assert client.get(reverse(APPLE_URL)).status_code == 404


def test_credentials_that_fail_give_a_503_page_and_a_notice_not_an_exception(client, anna, wallets, settings):
    settings.LOYALTY_WALLET_APPLE_KEY_PASSWORD = "wrong"
    settings.LOYALTY_WALLET_GOOGLE_PRIVATE_KEY = "/nonexistent/key.pem"
    client.force_login(anna.user)
    assert "Apple Wallet is not set up yet" in client.get(reverse("portal:card")).content.decode()
    apple = client.get(reverse(APPLE_URL))
    assert apple.status_code == 503 and "not available at the moment" in apple.content.decode()
    assert client.get(reverse(GOOGLE_URL)).status_code == 503


# --- Status and checks -----------------------------------------------------------------------

def test_status_is_off_without_settings_and_check_is_silent(db):
    assert wallet.apple_status().state is wallet.State.OFF
    assert wallet.google_status().state is wallet.State.OFF
    assert wallet.check_wallet_settings() == []


def test_check_warns_when_a_certificate_has_no_key(settings, tmp_path):
    configure_wallets(settings, tmp_path, google=False)
    settings.LOYALTY_WALLET_APPLE_KEY = ""
    [warning] = wallet.check_wallet_settings()
    assert warning.id == "members.W101" and warning.level == 30  # a Warning, not an Error
    assert "LOYALTY_WALLET_APPLE_KEY" in warning.msg
    call_command("check")  # warnings do not stop the command


def test_check_warns_when_the_certificate_does_not_belong_to_the_key(settings, tmp_path):
    configure_wallets(settings, tmp_path, google=False)
    other = make_test_credentials()
    settings.LOYALTY_WALLET_APPLE_CERT = other.certificate.public_bytes(Encoding.PEM).decode()
    [warning] = wallet.check_wallet_settings()
    assert warning.id == "members.W101" and "does not belong" in warning.msg


def test_an_expired_pass_certificate_is_broken(settings, tmp_path):
    configure_wallets(settings, tmp_path, make_test_credentials(pass_days=-1), google=False)
    status = wallet.apple_status()
    assert status.state is wallet.State.BROKEN and "expired" in status.problem


def test_check_warns_for_a_half_configured_google_wallet(settings):
    settings.LOYALTY_WALLET_GOOGLE_ISSUER_ID = "3388000000012345678"
    [warning] = wallet.check_wallet_settings()
    assert warning.id == "members.W102"
    assert "LOYALTY_WALLET_GOOGLE_PRIVATE_KEY" in warning.msg


def test_error_messages_never_repeat_an_inline_key(settings):
    settings.LOYALTY_WALLET_GOOGLE_ISSUER_ID = "3388000000012345678"
    settings.LOYALTY_WALLET_GOOGLE_CLASS_ID = "card"
    settings.LOYALTY_WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL = "wallet@example.iam.gserviceaccount.com"
    settings.LOYALTY_WALLET_GOOGLE_PRIVATE_KEY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" * 40  # a key without its PEM lines
    status = wallet.google_status()
    assert status.state is wallet.State.BROKEN
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in status.problem


def test_console_dashboard_shows_whether_wallets_are_set_up(admin_client, settings, tmp_path):
    configure_wallets(settings, tmp_path, google=False)
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'data-testid="wallet-status"' in html
    assert "Apple Wallet:</strong>" in html and "offered in the portal" in html
    assert "not set up: the portal says so" in html  # Google


# --- Demo ------------------------------------------------------------------------------------

def test_demo_credentials_are_written_once_and_make_both_wallets_ready(settings, tmp_path):
    from members.wallet_demo import demo_settings

    folder = tmp_path / "wallet-demo"
    assert write_demo_credentials(folder) is True
    assert write_demo_credentials(folder) is False  # a second seed keeps them (passes already saved stay valid)
    for name, value in demo_settings(folder).items():
        setattr(settings, name, value)
    assert wallet.apple_status().ready and wallet.google_status().ready
    assert wallet.wallet_offer() == {"apple": True, "google": True, "demo": True}


def test_demo_credentials_are_renewed_before_the_pass_certificate_expires(tmp_path):
    from members.wallet_demo import FILES, certificate_pem

    folder = tmp_path / "wallet-demo"
    write_demo_credentials(folder)
    (folder / FILES["cert"]).write_bytes(certificate_pem(make_test_credentials(pass_days=10).certificate))
    assert write_demo_credentials(folder) is True


def test_seed_writes_no_demo_credentials_unless_a_folder_is_set(settings):
    settings.LOYALTY_WALLET_DEMO_DIR = ""
    assert seed_wallet_demo() is False
