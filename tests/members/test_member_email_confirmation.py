"""An e-mail address that staff typed into the console must be confirmed by its owner before a
portal sign-up with it can take over the member (members.services, "E-mail addresses set by
staff"): before, whoever signed up with that address got the member's points and data."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from members import services
from members.models import Member
from tests import factories

PASSWORD = "Lindenblüte-42-Kaffee"


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def _staff_changes_email(staff_client, member: Member, email: str, capture) -> None:
    url = reverse("admin:members_member_change", args=[member.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(email=email, tags=[])
    with capture(execute=True):
        response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""


def _path_in(message, marker: str) -> str:
    return re.search(r"https?://[^/\s]+(/\S*" + marker + r"\S+)", message.body).group(1)


def _sign_up_and_verify(client: Client, email: str) -> None:
    client.post(reverse("account_signup"), {"first_name": "Nora", "email": email,
                                            "password1": PASSWORD, "password2": PASSWORD})
    client.post(_path_in(mail.outbox[-1], "confirm-email/"))


def test_a_sign_up_cannot_take_over_a_member_whose_address_staff_changed(
        staff_client, tiers, django_capture_on_commit_callbacks):
    member = factories.enrolled_member(email="erika@example.org", first_name="Erika")
    _staff_changes_email(staff_client, member, "fremd@example.org", django_capture_on_commit_callbacks)
    member.refresh_from_db()
    assert (member.email, member.email_confirmed) == ("fremd@example.org", False)
    confirmation = mail.outbox[-1]
    assert confirmation.to == ["fremd@example.org"] and "/e-mail/bestaetigen/" in confirmation.body

    # Whoever signs up with the new address and verifies it gets neither this member nor a new one.
    intruder = Client()
    _sign_up_and_verify(intruder, "fremd@example.org")
    member.refresh_from_db()
    assert member.user is None
    user = get_user_model().objects.get(email="fremd@example.org")
    assert not Member.objects.filter(user=user).exists()
    response = intruder.get(reverse("portal:dashboard"), follow=True)
    assert "waiting for its e-mail address to be confirmed" in response.content.decode()
    member.refresh_from_db()
    assert member.user is None and Member.objects.filter(points_balance__gte=0).count() == 1


def test_the_member_is_linked_only_after_the_address_was_confirmed(
        staff_client, tiers, django_capture_on_commit_callbacks):
    member = factories.enrolled_member(email="alt@example.org", first_name="Erika")
    _staff_changes_email(staff_client, member, "neu@example.org", django_capture_on_commit_callbacks)
    link = _path_in(mail.outbox[-1], "e-mail/bestaetigen/")
    portal = Client()
    _sign_up_and_verify(portal, "neu@example.org")
    assert portal.get(reverse("portal:dashboard")).status_code == 302

    anonymous = Client()
    assert anonymous.get(link).status_code == 200  # a mail scanner's GET confirms nothing
    member.refresh_from_db()
    assert not member.email_confirmed
    assert "is confirmed" in anonymous.post(link).content.decode()
    member.refresh_from_db()
    assert member.email_confirmed

    assert portal.get(reverse("portal:dashboard")).status_code == 200
    member.refresh_from_db()
    assert member.user == get_user_model().objects.get(email="neu@example.org")
    assert anonymous.post(link).status_code == 404  # used


def test_a_confirmation_link_is_worthless_once_staff_changed_the_address_again(
        staff_client, tiers, django_capture_on_commit_callbacks):
    member = factories.enrolled_member(email="alt@example.org")
    _staff_changes_email(staff_client, member, "tippfehler@example.org", django_capture_on_commit_callbacks)
    first_link = _path_in(mail.outbox[-1], "e-mail/bestaetigen/")
    _staff_changes_email(staff_client, member, "richtig@example.org", django_capture_on_commit_callbacks)
    assert Client().post(first_link).status_code == 404
    member.refresh_from_db()
    assert not member.email_confirmed
    assert services.member_email_confirm(token="not-a-token") is None


def test_staff_edits_that_leave_the_address_alone_keep_it_claimable(
        staff_client, tiers, django_capture_on_commit_callbacks):
    member = factories.enrolled_member(email="kundin@example.org", first_name="Ilse")
    url = reverse("admin:members_member_change", args=[member.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(first_name="Ilse-Marie", tags=[])
    outbox_before = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        assert staff_client.post(url, data).status_code == 302
    assert len(mail.outbox) == outbox_before
    _sign_up_and_verify(Client(), "kundin@example.org")
    member.refresh_from_db()
    assert member.email_confirmed and member.user is not None
