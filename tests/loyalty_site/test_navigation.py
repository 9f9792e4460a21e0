"""The console's sidebar (loyalty_site/navigation.py): every screen reachable, grouped by what
staff do, each item only for those who may open it, the scheduler only for administrators."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from loyalty_site.navigation import _build_navigation, forget_kept_sidebars, sidebar_navigation
from tests import factories


def _navigation(user) -> dict[str, list[str]]:
    request = RequestFactory().get("/admin/")
    request.user = user
    return {str(group["title"]): [item["link"] for item in group["items"]] for group in sidebar_navigation(request)}


def test_an_administrator_reaches_every_console_screen_from_the_navigation(db):
    links = {link for items in _navigation(factories.UserFactory(is_staff=True, is_superuser=True)).values()
             for link in items}
    every_screen = {reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
                    for model in admin.site._registry}
    assert links == every_screen


def test_marketing_sees_its_groups_and_not_the_scheduler_or_api_keys(db):
    user = factories.UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Marketing"))
    navigation = _navigation(user)
    assert list(navigation)[:3] == ["Programme", "Members", "Campaigns"]
    links = [link for items in navigation.values() for link in items]
    assert reverse("admin:campaigns_segment_changelist") in links
    assert reverse("admin:engagement_challenge_changelist") in links
    assert not any("django_celery_beat" in link for link in links)
    assert reverse("admin:partners_partnerapikey_changelist") not in links


def test_a_staff_user_without_permissions_gets_no_groups(db):
    assert _navigation(factories.UserFactory(is_staff=True)) == {}


# --- The sidebar kept per process (issue #24) ------------------------------------------------

@pytest.fixture(autouse=True)
def nothing_kept():
    forget_kept_sidebars()
    yield
    forget_kept_sidebars()


def _request(user, path: str = "/admin/"):
    request = RequestFactory().get(path)
    request.user = user
    return request


@pytest.mark.parametrize("role", ["Marketing", "Support", "Finance", "Administrator"])
def test_a_kept_sidebar_is_the_one_built_fresh_for_another_user_with_the_same_role(db, role):
    first, second = factories.staff_in(role), factories.staff_in(role)
    sidebar_navigation(_request(first))  # kept under the role's permissions
    kept = sidebar_navigation(_request(second))
    assert kept == _build_navigation(_request(second))
    assert kept is sidebar_navigation(_request(first))  # the same object, not built again


def test_the_sidebar_shows_a_permission_as_soon_as_it_is_granted_or_withdrawn(db):
    user = factories.UserFactory(is_staff=True)
    assert _navigation(user) == {}
    user.user_permissions.add(Permission.objects.get(codename="view_member"))
    user = type(user).objects.get(pk=user.pk)  # a new request loads the user afresh
    assert _navigation(user) == {"Members": [reverse("admin:members_member_changelist")]}
    user.user_permissions.clear()
    user = type(user).objects.get(pk=user.pk)
    assert _navigation(user) == {}


def test_the_scheduler_stays_hidden_from_a_user_with_an_administrators_permissions_but_not_the_group(db):
    administrator = factories.staff_in("Administrator")
    sidebar_navigation(_request(administrator))
    lookalike = factories.UserFactory(is_staff=True)
    lookalike.user_permissions.set(Group.objects.get(name="Administrator").permissions.all())
    links = [link for items in _navigation(lookalike).values() for link in items]
    assert reverse("admin:members_member_changelist") in links
    assert not any("django_celery_beat" in link for link in links)


def test_the_kept_sidebar_follows_the_language(db):
    user = factories.UserFactory(is_staff=True, is_superuser=True)
    with translation.override("en"):
        english = _navigation(user)
    with translation.override("de"):
        german = _navigation(user)
    assert "Users" in _titles(user, "en") and "Benutzer" in _titles(user, "de")
    assert english["System"][0].startswith("/en/admin/") and german["System"][0].startswith("/admin/")


def _titles(user, language: str) -> list[str]:
    with translation.override(language):
        return [item["title"] for group in sidebar_navigation(_request(user)) for item in group["items"]]


def test_a_console_page_renders_the_sidebar_once_per_role_and_active_item(client, db):
    client.force_login(factories.staff_in("Support"))
    ledger, purchases = reverse("admin:rewards_pointentry_changelist"), reverse("admin:rewards_purchase_changelist")
    first = client.get(ledger)
    assert "unfold/helpers/app_list.html" in [template.name for template in first.templates]
    again = client.get(ledger)
    assert "unfold/helpers/app_list.html" not in [template.name for template in again.templates]
    assert _sidebar(again) == _sidebar(first)
    assert _active_links(again) == [ledger]
    assert _active_links(client.get(purchases)) == [purchases]  # another page: its own item active


def test_the_sidebar_on_a_page_changes_with_the_users_permissions(client, db):
    user = factories.staff_in("Support")
    client.force_login(user)
    ledger = reverse("admin:rewards_pointentry_changelist")
    rules = reverse("admin:rewards_earningrule_changelist")
    assert f'href="{rules}"' not in _sidebar(client.get(ledger))
    user.user_permissions.add(Permission.objects.get(codename="view_earningrule"))
    assert f'href="{rules}"' in _sidebar(client.get(ledger))


def test_the_sidebar_on_a_page_follows_the_language(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    german = _sidebar(client.get(reverse("admin:rewards_pointentry_changelist")))
    with translation.override("en"):
        english = _sidebar(client.get(reverse("admin:rewards_pointentry_changelist")))
    assert ">Benutzer<" in german and ">Users<" in english
    assert 'href="/en/admin/auth/user/"' in english and 'href="/admin/auth/user/"' in german


def _sidebar(response) -> str:
    """The sidebar's list and what follows it in the navigation (its language form's CSRF token
    differs per request)."""
    html = response.content.decode()
    start = html.index('id="nav-sidebar-apps"')
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html[start:html.index("</nav>", start)])


def _active_links(response) -> list[str]:
    return re.findall(r'<a href="([^"]+)" class="[^"]* active"', _sidebar(response))
