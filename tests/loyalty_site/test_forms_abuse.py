"""Oversized and abusive input on every console form and every portal form: absurdly long texts,
huge numbers, negative amounts and dates far in the past or the future. Each is refused by the
form with an error on the field (no 500 page), and nothing is created or changed.

The console part walks the admin site: every add and change form of our models (the change
form of each model a factory can make), one POST per field and abusive value, with only that
field filled in (the error must be the field's own, not a missing neighbour's).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django import forms
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from tests import factories

OUR_APPS = {"members", "rewards", "referrals", "campaigns", "feedback", "loyalty_site", "partners", "transfers"}

LONG_TEXT = "x" * 100_000
HUGE_NUMBER = "9" * 40
NEGATIVE = "-5"
FAR_FUTURE = date(9999, 12, 31)
FAR_PAST = date(1000, 1, 1)

# Fields where a negative number means something: a reward's stock change takes units away.
NEGATIVE_ALLOWED = {"rewards.Reward.stock_change"}


def _abusive_values(field: forms.Field) -> list[tuple[str, object]]:
    if isinstance(field, (forms.BooleanField, forms.FileField, forms.ModelChoiceField, forms.ChoiceField,
                          forms.MultipleChoiceField, forms.JSONField)):
        return []
    if isinstance(field, (forms.DateTimeField, forms.SplitDateTimeField)):
        return [("far future", datetime.combine(FAR_FUTURE, datetime.min.time())),
                ("far past", datetime.combine(FAR_PAST, datetime.min.time()))]
    if isinstance(field, forms.DateField):
        return [("far future", FAR_FUTURE), ("far past", FAR_PAST)]
    if isinstance(field, (forms.IntegerField, forms.DecimalField, forms.FloatField)):
        return [("huge number", HUGE_NUMBER), ("negative", NEGATIVE)]
    if isinstance(field, forms.CharField):
        return [("long text", LONG_TEXT)]
    return []


def _post_data(name: str, field: forms.Field, value) -> dict:
    widget = field.widget
    if isinstance(widget, forms.MultiWidget):  # the admin's split date and time
        suffixes = getattr(widget, "widgets_names", ["_0", "_1"])
        if isinstance(value, datetime):
            return {f"{name}{suffixes[0]}": value.date().isoformat(), f"{name}{suffixes[1]}": "00:00:00"}
        return {f"{name}{suffix}": str(value) for suffix in suffixes}
    if isinstance(value, datetime):
        return {name: value.strftime("%Y-%m-%d %H:%M:%S")}
    if isinstance(value, date):
        return {name: value.isoformat()}
    return {name: value}


def _form_of(response):
    context = response.context
    if context is None:
        return None
    for key in ("adminform", "form"):
        try:
            found = context[key]
        except KeyError:
            continue
        return getattr(found, "form", found)
    return None


def _row(model, pk) -> dict:
    return model.objects.filter(pk=pk).values().get()


def _registered():
    return sorted(((model, model_admin) for model, model_admin in admin.site._registry.items()
                   if model._meta.app_label in OUR_APPS), key=lambda pair: pair[0]._meta.label)


def _existing(model):
    factory = getattr(factories, f"{model.__name__}Factory", None)
    return factory() if factory is not None else None


def _check(client, url: str, name: str, field: forms.Field, value, *, baseline: dict, label: str,
           unchanged, problems: list[str]) -> None:
    """POST `value` into `name` on top of `baseline`: the page comes back with an error on that
    field, and `unchanged()` (a snapshot of what the form could change) is what it was."""
    before = unchanged()
    response = client.post(url, {**baseline, **_post_data(name, field, value)})
    where = f"{url} {name} ({label})"
    if response.status_code != 200:
        problems.append(f"{where}: HTTP {response.status_code}")
        return
    form = _form_of(response)
    if form is None or name not in form.errors:
        problems.append(f"{where}: no error on the field")
    if unchanged() != before:
        problems.append(f"{where}: something changed")


@pytest.mark.django_db
def test_every_console_form_refuses_abusive_input_with_a_form_error(admin_client, admin_user, tiers):
    request = RequestFactory().get("/")
    request.user = admin_user
    problems: list[str] = []
    checked = 0
    for model, model_admin in _registered():
        meta = model._meta
        targets = []
        if model_admin.has_add_permission(request):
            targets.append((None, reverse(f"admin:{meta.app_label}_{meta.model_name}_add")))
        obj = _existing(model)
        if obj is not None and model_admin.has_change_permission(request, obj):
            targets.append((obj, reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])))
        for obj, url in targets:
            page = admin_client.get(url)
            assert page.status_code == 200, url
            form = _form_of(page)  # the form the view really shows (an upload form, extra fields)
            assert form is not None, url

            def unchanged(model=model, obj=obj):
                return (model.objects.count(), _row(model, obj.pk) if obj is not None else None)

            for name, field in form.fields.items():
                for label, value in _abusive_values(field):
                    if label == "negative" and f"{meta.label}.{name}" in NEGATIVE_ALLOWED:
                        continue
                    _check(admin_client, url, name, field, value, baseline={}, label=label, unchanged=unchanged,
                           problems=problems)
                    checked += 1
    assert checked > 150
    assert not problems, "\n".join(problems)


# --- The member portal ---------------------------------------------------------------------------

def _baseline(form: forms.Form) -> dict:
    """What the browser would send back for the unchanged form."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None:
            continue
        data[name] = value.isoformat() if isinstance(value, date) else value
    return data


@pytest.fixture
def portal_member(tiers):
    from allauth.account.models import EmailAddress

    from members.services import member_link_or_enrol

    user = factories.UserFactory(email="abuse@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return member_link_or_enrol(user=user, email=user.email)


@pytest.mark.django_db
def test_every_portal_form_refuses_abusive_input_with_a_form_error(client, portal_member):
    from feedback import services as feedback_services
    from feedback.models import Complaint, ComplaintMessage, Response
    from members.models import Member

    complaint = feedback_services.complaint_open(member_id=portal_member.pk, category="product", subject="Mühle",
                                                 description="kaputt", channel="portal")
    invitation = factories.SurveyInvitationFactory(member=portal_member)
    pages = {
        reverse("portal:profile"): lambda: Member.objects.filter(pk=portal_member.pk).values().get(),
        reverse("feedback:complaint_new"): lambda: list(Complaint.objects.values()),
        reverse("feedback:complaint", args=[complaint.pk]): lambda: list(ComplaintMessage.objects.values()),
        reverse("feedback:answer", args=[invitation.pk]): lambda: list(Response.objects.values()),
    }
    client.force_login(portal_member.user)
    problems: list[str] = []
    checked = 0
    for url, unchanged in pages.items():
        page = client.get(url)
        assert page.status_code == 200, url
        form = _form_of(page)
        baseline = _baseline(form)
        baseline.setdefault("category", "product")
        baseline.setdefault("subject", "Betreff")
        baseline.setdefault("description", "Beschreibung")
        baseline.setdefault("body", "Nachricht")
        if "score" in form.fields:
            baseline["score"] = form.fields["score"].choices[-1][0]
        for name, field in form.fields.items():
            for label, value in _abusive_values(field):
                _check(client, url, name, field, value, baseline=baseline, label=label, unchanged=unchanged,
                       problems=problems)
                checked += 1
        # The untouched baseline is valid: the errors above came from the abusive values alone.
        valid = client.post(url, baseline)
        assert valid.status_code == 302, f"{url}: the untouched form is refused: {_form_of(valid).errors}"
    assert checked >= 8
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_the_signup_form_refuses_oversized_input(client, tiers):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.count()
    for data in ({"email": LONG_TEXT + "@example.org", "password1": "Geheim-12345", "password2": "Geheim-12345"},
                 {"email": "neu@example.org", "password1": LONG_TEXT, "password2": LONG_TEXT},
                 {"email": "neu@example.org", "password1": "Geheim-12345", "password2": "Geheim-12345",
                  "referral_code": LONG_TEXT},
                 {"email": "neu@example.org", "password1": "Geheim-12345", "password2": "Geheim-12345",
                  "first_name": LONG_TEXT},
                 {"email": "neu@example.org", "password1": "Geheim-12345", "password2": "Geheim-12345",
                  "last_name": LONG_TEXT}):
        response = client.post(reverse("account_signup"), {"first_name": "Nora", **data})
        assert response.status_code == 200
        assert _form_of(response).errors
    assert get_user_model().objects.count() == users
