"""Referrals in the portal: the share link remembers the referrer until sign-up, the code field at
sign-up, the "Refer friends" page shows only the member's own referrals."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from members.models import Member
from members.services import member_link_or_enrol
from referrals import links, services
from referrals.models import Referral, ReferralClaim
from rewards.purchases import purchase_record
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "Lindenblüte-42-Kaffee"
GERMAN_PO = Path(__file__).resolve().parents[2] / "locale" / "de" / "LC_MESSAGES" / "django.po"


def _portal_member(email: str, **fields) -> Member:
    user = factories.UserFactory(email=email)
    member = member_link_or_enrol(user=user, email=email)
    if fields:
        Member.objects.filter(pk=member.pk).update(**fields)
        member.refresh_from_db()
    return member


def _sign_up(client, email: str, **extra):
    return client.post(reverse("account_signup"),
                       {"first_name": "Ben", "email": email, "password1": PASSWORD, "password2": PASSWORD, **extra})


def _confirm_from_mail(client):
    link = re.search(r"https?://[^/\s]+(/\S*confirm-email/\S+)", mail.outbox[-1].body).group(1)
    return client.post(link)


@pytest.fixture
def program(tiers):
    return factories.ReferralProgramFactory()


@pytest.fixture
def anna(program):
    return _portal_member("anna@example.org", first_name="Anna", last_name="Berger")


def test_the_share_link_works_without_login_and_leads_to_sign_up(client, anna):
    code = factories.referral_code(anna)
    response = client.get(f"/r/{code}")
    assert response.status_code == 302 and response["Location"] == reverse("account_signup")
    assert client.session[links.SESSION_KEY]["code"] == code
    cookie = response.cookies[links.COOKIE_NAME]
    assert cookie["httponly"] and cookie["max-age"] == 30 * 86400
    page = client.get(reverse("account_signup")).content.decode()
    assert "You were invited by Anna." in page
    assert f'value="{code}"' in page  # the code field is filled in


def test_link_then_sign_up_then_verification_attributes_the_referral(client, anna, partner):
    code = factories.referral_code(anna)
    client.get(f"/r/{code}")
    _sign_up(client, "ben@example.org")
    claim = ReferralClaim.objects.get(user__email="ben@example.org")
    assert (claim.code, claim.channel) == (code, Referral.Channel.LINK)
    _confirm_from_mail(client)
    referral = Referral.objects.get()
    ben = Member.objects.get(email="ben@example.org")
    assert (referral.referrer, referral.referee, referral.channel) == (anna, ben, Referral.Channel.LINK)
    assert referral.review_reasons == []
    assert not ReferralClaim.objects.exists()

    purchase_record(member_id=ben.pk, partner=partner, order_reference="B-1", amount=Decimal("25"))
    services.referrals_release_due(now=timezone.now() + timedelta(days=15))
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REWARDED


def test_the_cookie_remembers_the_referrer_when_the_session_is_gone(client, anna):
    code = factories.referral_code(anna)
    client.get(f"/r/{code}")
    session = client.session
    session.pop(links.SESSION_KEY)
    session.save()
    _sign_up(client, "carla@example.org")
    _confirm_from_mail(client)
    assert Referral.objects.get().referrer == anna


def test_a_code_typed_at_sign_up_is_used(client, anna):
    code = factories.referral_code(anna)
    _sign_up(client, "dora@example.org", referral_code=code.lower())
    _confirm_from_mail(client)
    referral = Referral.objects.get()
    assert (referral.referrer, referral.channel) == (anna, Referral.Channel.SIGNUP)


def test_an_unknown_code_at_sign_up_is_a_form_error(client, anna):
    response = _sign_up(client, "emil@example.org", referral_code="WRONG234")
    assert response.status_code == 200
    assert "This referral code is not valid." in response.content.decode()
    assert not mail.outbox


def test_sign_up_without_a_code_records_nothing(client, anna):
    _sign_up(client, "fritz@example.org")
    _confirm_from_mail(client)
    assert not Referral.objects.exists()


def test_an_invalid_link_still_leads_to_sign_up(client, program):
    response = client.get("/r/NOTACODE")
    assert response.status_code == 302
    assert links.SESSION_KEY not in client.session


def test_signing_up_as_an_existing_till_member_via_a_link_goes_to_review(client, anna):
    known = factories.enrolled_member(email="gerd@example.org")
    Member.objects.filter(pk=known.pk).update(joined_at=timezone.now() - timedelta(days=200))
    client.get(f"/r/{factories.referral_code(anna)}")
    _sign_up(client, "gerd@example.org")
    _confirm_from_mail(client)
    assert Referral.objects.get(referee=known).review_reasons == [Referral.Flag.EXISTING_MEMBER]


def test_the_refer_friends_page_shows_the_link_conditions_and_my_referrals(client, anna):
    ben = factories.enrolled_member(first_name="Benjamin", last_name="Schulz")
    services.referral_attach(referee_id=ben.pk, code=factories.referral_code(anna), channel="api")
    client.force_login(anna.user)
    response = client.get(reverse("referrals:portal"))
    assert response.status_code == 200
    page = response.content.decode()
    code = factories.referral_code(anna)
    assert f"http://testserver/r/{code}" in page
    assert "wa.me" in page and "mailto:" in page and "data-native-share" in page
    assert "Benjamin S." in page and "Schulz" not in page
    assert "at least 20.00 EUR" in page or "20,00" in page
    assert "Refer friends" in page  # the navigation item appears


def test_a_member_sees_only_their_own_referrals(client, anna):
    bernd = _portal_member("bernd@example.org", first_name="Bernd")
    friend = factories.enrolled_member(first_name="Zacharias", last_name="Zeisig")
    services.referral_attach(referee_id=friend.pk, code=factories.referral_code(bernd), channel="api")
    client.force_login(anna.user)
    page = client.get(reverse("referrals:portal")).content.decode()
    assert "Zacharias" not in page
    assert factories.referral_code(bernd) not in page
    assert "You have not referred anyone yet" in page


def test_the_page_needs_a_login_and_refuses_staff(client, program):
    assert client.get(reverse("referrals:portal")).status_code == 302
    client.force_login(factories.StaffUserFactory())
    assert client.get(reverse("referrals:portal")).status_code == 403


def test_a_signed_in_member_following_a_link_goes_to_their_page(client, anna):
    bernd = _portal_member("bernd@example.org")
    client.force_login(anna.user)
    response = client.get(f"/r/{factories.referral_code(bernd)}")
    assert response["Location"] == reverse("referrals:portal")
    assert not Referral.objects.exists()


def test_the_bonus_shows_in_the_activity_in_the_readers_language(client, anna, partner):
    ben = factories.enrolled_member()
    referral = services.referral_attach(referee_id=ben.pk, code=factories.referral_code(anna), channel="api")
    purchase_record(member_id=ben.pk, partner=partner, order_reference="A-1", amount=Decimal("25"))
    services.referral_pay(referral_id=referral.pk, now=timezone.now() + timedelta(days=15))
    client.force_login(anna.user)
    page = client.get(reverse("portal:activity")).content.decode()
    assert "Referral bonus" in page and "+500" in page


# --- The referred friend's view: who invited them, what to do, when the bonus arrives ---------

def test_the_friend_sees_the_inviters_first_name_only_on_the_sign_up_page(client, anna):
    client.get(f"/r/{factories.referral_code(anna)}")
    page = client.get(reverse("account_signup")).content.decode()
    assert "You were invited by Anna." in page
    for private in ("Berger", "anna@example.org", anna.card_number, anna.customer_number):
        assert private not in page


def test_the_sign_up_page_says_who_invited_in_german(client, anna, german_catalogue):
    client.get(f"/r/{factories.referral_code(anna)}")
    page = client.get(reverse("account_signup"), headers={"accept-language": "de"}).content.decode()
    assert "Sie wurden von Anna eingeladen." in page


def test_an_invalid_or_dead_code_names_nobody_on_the_sign_up_page(client, anna):
    client.get("/r/NOTACODE")
    page = client.get(reverse("account_signup")).content.decode()
    assert "You were invited by" not in page and "data-referral-inviter" not in page
    # A code remembered from before its owner left names nobody either.
    client.get(f"/r/{factories.referral_code(anna)}")
    Member.objects.filter(pk=anna.pk).update(status=Member.Status.CLOSED)
    page = client.get(reverse("account_signup")).content.decode()
    assert "Anna" not in page and "data-referral-inviter" not in page


def _short_dates(moment) -> set[str]:
    """The short date as either language writes it (the page's language follows the member)."""
    dates = set()
    for language in ("de", "en"):
        with translation.override(language):
            dates.add(date_format(timezone.localtime(moment), "SHORT_DATE_FORMAT"))
    return dates


@pytest.fixture
def german_catalogue(tmp_path, settings):
    """The test settings leave our catalogue out; the German tests compile it (as
    tests/members/test_account_voice.py does)."""
    if shutil.which("msgfmt") is None:
        pytest.skip("gettext is installed by scripts/system-deps.sh")
    target = tmp_path / "locale" / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    subprocess.run(["msgfmt", "-o", str(target / "django.mo"), str(GERMAN_PO)], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale"]


def _referred_friend(anna) -> tuple[Member, Referral]:
    ben = _portal_member("ben@example.org", first_name="Ben", last_name="Schulz")
    # Given at the till (the API): a member who joined a moment ago is still new, so no review.
    referral = services.referral_attach(referee_id=ben.pk, code=factories.referral_code(anna), channel="api")
    assert referral.review_reasons == []
    return ben, referral


def test_a_pending_friend_sees_who_invited_them_the_rule_and_the_bonus(client, anna):
    ben, referral = _referred_friend(anna)
    client.force_login(ben.user)
    deadlines = _short_dates(referral.started_at + timedelta(days=30))
    for url in (reverse("referrals:portal"), reverse("portal:dashboard")):
        page = client.get(url).content.decode()
        assert "You were invited by Anna." in page
        assert any(f"make a first purchase of at least {amount} EUR by {deadline}" in page
                   for amount in ("20.00", "20,00") for deadline in deadlines)
        assert "Your welcome bonus: 250 points." in page
        assert "It arrives 14 days after the purchase, once the purchase can no longer be returned." in page
        for private in ("Berger", "anna@example.org", anna.card_number, anna.customer_number):
            assert private not in page


def test_a_qualified_friend_sees_the_day_the_bonus_arrives(client, anna, partner):
    ben, referral = _referred_friend(anna)
    purchase_record(member_id=ben.pk, partner=partner, order_reference="B-7", amount=Decimal("25"))
    referral.refresh_from_db()
    client.force_login(ben.user)
    page = client.get(reverse("referrals:portal")).content.decode()
    assert any(f"Your bonus arrives on {arrives}, once your purchase can no longer be returned." in page
               for arrives in _short_dates(referral.payable_at))
    assert "Done: your purchase on" in page


def test_a_rewarded_friend_sees_the_bonus_and_when_in_german(client, anna, partner, german_catalogue):
    ben, referral = _referred_friend(anna)
    purchase_record(member_id=ben.pk, partner=partner, order_reference="B-8", amount=Decimal("25"))
    paid_at = timezone.now() + timedelta(days=15)
    assert services.referral_pay(referral_id=referral.pk, now=paid_at).status == Referral.Status.REWARDED
    client.force_login(ben.user)
    page = client.get(reverse("portal:dashboard"), headers={"accept-language": "de"}).content.decode()
    assert "Sie wurden von Anna eingeladen." in page
    assert any(f"Am {date} haben Sie 250 Bonuspunkte erhalten." in page for date in _short_dates(paid_at))


def test_a_member_without_a_referral_sees_no_invitation_and_no_one_elses(client, anna):
    _referred_friend(anna)
    carla = _portal_member("carla@example.org", first_name="Carla")
    client.force_login(carla.user)
    for url in (reverse("referrals:portal"), reverse("portal:dashboard")):
        page = client.get(url).content.decode()
        assert "You were invited by" not in page and "invitation-title" not in page
    client.force_login(anna.user)  # the referrer is not the friend: no invitation card for her
    assert "You were invited by" not in client.get(reverse("portal:dashboard")).content.decode()
