"""The console's sidebar (loyalty_site/navigation.py): every screen reachable, grouped by what
staff do, each item only for those who may open it, the scheduler only for administrators."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from loyalty_site.navigation import sidebar_navigation
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
