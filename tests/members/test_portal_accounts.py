"""Portal accounts: sign-up with e-mail verification, linking to a known member, staff kept apart."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import translation

from members.models import Member
from members.services import member_link_or_enrol
from tests import factories

PASSWORD = "Lindenblüte-42-Kaffee"


def _sign_up(client, email: str, first_name: str = "Nora", **extra):
    return client.post(reverse("account_signup"), {"first_name": first_name, "email": email, "password1": PASSWORD,
                                                    "password2": PASSWORD, **extra})


def _confirmation_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S*confirm-email/\S+)", message.body).group(1)


def _confirm_from_mail(client):
    link = _confirmation_link(mail.outbox[-1])
    return client.post(link)


def test_sign_up_sends_a_verification_mail_and_creates_no_member_yet(client, tiers):
    response = _sign_up(client, "neu@example.org")
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "confirm-email" in mail.outbox[0].body
    user = get_user_model().objects.get(email="neu@example.org")
    assert not Member.objects.filter(user=user).exists()
    # Mandatory verification: not signed in before the address is confirmed.
    assert client.get(reverse("portal:dashboard")).status_code == 302


def test_verifying_the_email_enrols_a_member_and_signs_in(client, tiers):
    _sign_up(client, "neu@example.org")
    response = _confirm_from_mail(client)
    assert response.status_code == 302
    member = Member.objects.get(email="neu@example.org")
    assert member.user.email == "neu@example.org"
    assert member.tier == tiers[0]
    assert member.language == "de"
    assert client.get(reverse("portal:dashboard")).status_code == 200


def test_sign_up_links_to_a_member_the_till_already_knows(client, tiers):
    known = factories.enrolled_member(email="Kundin@Example.org", first_name="Ilse")
    _sign_up(client, "kundin@example.org")
    _confirm_from_mail(client)
    known.refresh_from_db()
    assert known.user is not None and known.user.email == "kundin@example.org"
    assert Member.objects.filter(email__iexact="kundin@example.org").count() == 1


def test_sign_up_without_a_first_name_is_refused_and_creates_nothing(client, tiers):
    response = _sign_up(client, "neu@example.org", first_name="   ")
    assert response.status_code == 200
    assert response.context["form"].errors["first_name"] == ["Please enter your first name."]
    assert not get_user_model().objects.filter(email="neu@example.org").exists()
    assert not mail.outbox


def test_sign_up_name_longer_than_the_members_is_refused(client, tiers):
    response = _sign_up(client, "neu@example.org", first_name="N" * 101)
    assert response.status_code == 200
    assert not get_user_model().objects.filter(email="neu@example.org").exists()


def test_the_first_name_from_sign_up_goes_to_the_new_member(client, tiers):
    _sign_up(client, "neu@example.org", first_name="  Nora ", last_name=" Berger ")
    _confirm_from_mail(client)
    member = Member.objects.get(email="neu@example.org")
    assert (member.first_name, member.last_name) == ("Nora", "Berger")


def test_a_known_member_without_a_name_takes_the_one_from_sign_up(client, tiers):
    known = factories.enrolled_member(email="kundin@example.org", first_name="", last_name="")
    _sign_up(client, "kundin@example.org", first_name="Ilse")
    _confirm_from_mail(client)
    known.refresh_from_db()
    assert known.user is not None and known.first_name == "Ilse"


def test_sign_up_never_overwrites_the_name_staff_entered(client, tiers):
    known = factories.enrolled_member(email="kundin@example.org", first_name="Ilse", last_name="Maier")
    _sign_up(client, "kundin@example.org", first_name="Nicht-Ilse", last_name="Anders")
    _confirm_from_mail(client)
    known.refresh_from_db()
    assert known.user is not None
    assert (known.first_name, known.last_name) == ("Ilse", "Maier")


def test_an_unverified_address_never_claims_a_member(db, tiers):
    known = factories.enrolled_member(email="fremd@example.org")
    user = factories.UserFactory(email="fremd@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    # Without the signal (no verification) the portal's safety net finds no verified address.
    from django.test import Client

    client = Client()
    client.force_login(user)
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email")
    known.refresh_from_db()
    assert known.user is None


def test_linking_follows_a_merged_member_to_its_survivor(db, tiers):
    from members.merge import member_merge

    survivor = factories.enrolled_member(email="neu@example.org")
    duplicate = factories.enrolled_member(email="alt@example.org")
    member_merge(survivor_id=survivor.pk, duplicate_id=duplicate.pk)
    user = factories.UserFactory(email="alt@example.org")
    assert member_link_or_enrol(user=user, email="alt@example.org") == survivor


def test_an_address_owned_by_another_login_enrols_without_the_email(db, tiers):
    owner = factories.enrolled_member(email="geteilt@example.org")
    Member.objects.filter(pk=owner.pk).update(user=factories.UserFactory())
    newcomer = factories.UserFactory(email="geteilt@example.org")
    member = member_link_or_enrol(user=newcomer, email="geteilt@example.org")
    assert member.pk != owner.pk and member.email == "" and member.user == newcomer


def test_login_by_code_verifies_the_address_and_gives_a_member(client, tiers):
    user = factories.UserFactory(email="code@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    client.post(reverse("account_request_login_code"), {"email": "code@example.org"})
    code = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", mail.outbox[-1].body, re.MULTILINE).group(1)
    response = client.post(reverse("account_confirm_login_code"), {"code": code})
    assert response.status_code == 302
    assert Member.objects.get(user=user).email == "code@example.org"


def test_members_land_on_their_dashboard_and_staff_in_the_console(client, tiers):
    member_user = factories.UserFactory(email="m@example.org")
    EmailAddress.objects.create(user=member_user, email=member_user.email, verified=True, primary=True)
    member_link_or_enrol(user=member_user, email=member_user.email)
    response = client.post(reverse("account_login"), {"login": "m@example.org", "password": "correct-horse-battery"})
    assert response["Location"] == reverse("portal:dashboard")

    staff = factories.StaffUserFactory(email="chef@example.org")
    EmailAddress.objects.create(user=staff, email=staff.email, verified=True, primary=True)
    client.post(reverse("account_logout"))
    response = client.post(reverse("account_login"), {"login": "chef@example.org", "password": "correct-horse-battery"})
    assert response["Location"] == reverse("admin:index")


def test_staff_cannot_use_the_portal_as_a_member(client, tiers):
    staff = factories.StaffUserFactory(email="chef@example.org")
    EmailAddress.objects.create(user=staff, email=staff.email, verified=True, primary=True)
    client.force_login(staff)
    for name in ("portal:dashboard", "portal:activity", "portal:rewards", "portal:profile", "portal:privacy"):
        with translation.override("en"):
            url = reverse(name)
        response = client.get(url)
        assert response.status_code == 403
        assert "This is a staff account" in response.content.decode()
    assert not Member.objects.filter(user=staff).exists()


def test_confirming_a_staff_address_creates_no_member(db, tiers):
    staff = factories.StaffUserFactory(email="chef@example.org")
    assert member_link_or_enrol(user=staff, email=staff.email) is None
    assert not Member.objects.exists()


def test_member_accounts_never_reach_the_admin(client, member):
    user = factories.UserFactory(email=member.email)
    Member.objects.filter(pk=member.pk).update(user=user)
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"] or "login" in response["Location"]
    assert client.get(reverse("admin:members_member_changelist")).status_code == 302


def test_private_pages_need_a_login_and_public_ones_do_not(client, tiers):
    for name in ("portal:dashboard", "portal:activity", "portal:rewards", "portal:vouchers", "portal:profile",
                 "portal:privacy", "portal:export", "portal:delete", "portal:card"):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("account_login"))
    assert client.get(reverse("portal:home")).status_code == 200
    assert client.get(reverse("portal:terms")).status_code == 200


@pytest.mark.parametrize("name", ["account_login", "account_signup", "account_reset_password",
                                  "account_request_login_code"])
def test_account_pages_render_in_the_portal_layout(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="site-header"' in html and 'lang="de"' in html
