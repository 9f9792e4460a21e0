"""Sign-up, sign-in and account mails and pages speak in the product's voice ("Sie"), with the
programme's name and links on the public address (#23)."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import allauth
import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import translation

PASSWORD = "Lindenblüte-42-Kaffee"
# "du", "dein…", "dich", "dir" and allauth's informal imperatives: what "Sie" never needs.
INFORMAL = re.compile(r"\b(du|dein\w*|dich|dir|gib|bestätige|versuche|wähle|kontaktiere|melde dich|lass)\b", re.I)
ALLAUTH_GERMAN = Path(allauth.__file__).parent / "locale" / "de" / "LC_MESSAGES" / "django.mo"
OUR_GERMAN = Path(__file__).resolve().parents[2] / "locale" / "de" / "LC_MESSAGES" / "django.po"

pytestmark = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is installed by scripts/system-deps.sh")


@pytest.fixture(autouse=True)
def german_catalogue(tmp_path, settings):
    """The test settings leave our catalogue out (tests read the English source texts); these
    tests are about the German words, so they compile it and put it back."""
    target = tmp_path / "locale" / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    subprocess.run(["msgfmt", "-o", str(target / "django.mo"), str(OUR_GERMAN)], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale"]  # Django's test signals drop the loaded catalogues


def _allauth_informal_msgids() -> list[str]:
    with ALLAUTH_GERMAN.open("rb") as catalogue:
        texts = gettext.GNUTranslations(catalogue)._catalog  # msgid -> allauth's German
    return sorted(msgid for msgid, german in texts.items()
                  if isinstance(msgid, str) and msgid and isinstance(german, str) and INFORMAL.search(german))


def test_every_informal_allauth_text_is_said_with_sie_in_our_catalogue():
    informal = _allauth_informal_msgids()
    assert len(informal) > 40  # the check reads allauth's catalogue (a new allauth text shows up here)
    with translation.override("de"):
        still_informal = {msgid: translation.gettext(msgid) for msgid in informal
                          if INFORMAL.search(translation.gettext(msgid))}
    assert still_informal == {}


@pytest.mark.parametrize("url_name", ["account_login", "account_signup", "account_reset_password",
                                      "account_request_login_code"])
def test_account_pages_say_sie_in_german(client, url_name):
    html = client.get(reverse(url_name)).content.decode()
    visible = re.sub(r"<[^>]+>", " ", html)
    assert "Passwort" in visible or "Code" in visible  # German, not the English source
    assert INFORMAL.search(visible) is None, INFORMAL.search(visible)


def test_the_sign_up_mail_speaks_for_the_programme_on_its_public_address(client, tiers, settings):
    settings.LOYALTY_PUBLIC_URL = "https://treue.example"
    settings.LOYALTY_PROGRAMME_NAME = "Bäckerei Treue"
    client.post(reverse("account_signup"), {"first_name": "Lena", "email": "lena.neumann@example.org",
                                            "password1": PASSWORD, "password2": PASSWORD})
    message = mail.outbox[-1]
    assert "Sie" in message.body and INFORMAL.search(message.body) is None
    assert "Bäckerei Treue" in message.body
    assert "Benutzer" not in message.body and "lena.neumann" not in message.body.split("@")[0]
    links = re.findall(r"https?://\S+", message.body)
    assert links and all(link.startswith("https://treue.example/") for link in links)
    assert "testserver" not in message.body


def test_the_password_reset_mail_links_to_the_public_address(client, settings, db):
    settings.LOYALTY_PUBLIC_URL = "https://treue.example"
    user = get_user_model().objects.create_user(username="ilse", email="ilse@example.org", password=PASSWORD)
    EmailAddress.objects.create(user=user, email="ilse@example.org", verified=True, primary=True)
    client.post(reverse("account_reset_password"), {"email": "ilse@example.org"})
    body = mail.outbox[-1].body
    assert "https://treue.example/" in body and "testserver" not in body
    assert INFORMAL.search(body) is None and "Passwort" in body


def test_english_account_mails_are_english(client, tiers, settings):
    with translation.override("en"):
        sign_up = reverse("account_signup")
    client.post(sign_up, {"first_name": "Lena", "email": "lena@example.org", "password1": PASSWORD,
                          "password2": PASSWORD})
    body = mail.outbox[-1].body
    assert "please confirm that this e-mail address belongs to your Treuepunkt customer account" in body
    assert "Ihr" not in body and "Sie " not in body
