"""The console's admin site (loyalty_site/admin_site.py): Unfold's, building the app list only
for the pages that show it, and Unfold's navigation template with the kept sidebar list."""

from __future__ import annotations

from pathlib import Path

import unfold
from django.conf import settings
from django.contrib import admin
from django.urls import reverse

from loyalty_site.admin_site import ConsoleAdminSite
from loyalty_site.navigation import forget_kept_sidebars
from tests import factories


def _count_app_list_builds(monkeypatch) -> list:
    builds = []
    build = admin.site._build_app_dict

    def counted(request, label=None):
        builds.append(label)
        return build(request, label)

    monkeypatch.setattr(admin.site, "_build_app_dict", counted)
    return builds


def test_the_console_is_served_by_the_console_site():
    assert isinstance(admin.site, ConsoleAdminSite)


def test_a_changelist_does_not_build_the_app_list_it_never_shows(client, db, monkeypatch):
    builds = _count_app_list_builds(monkeypatch)
    client.force_login(factories.staff_in("Support"))
    response = client.get(reverse("admin:rewards_pointentry_changelist"), {"q": "B0000000001"})
    assert response.status_code == 200 and b'id="nav-sidebar-apps"' in response.content
    assert builds == []


def test_an_app_page_still_lists_the_apps_models(client, db, monkeypatch):
    builds = _count_app_list_builds(monkeypatch)
    client.force_login(factories.staff_in("Support"))
    response = client.get(reverse("admin:app_list", kwargs={"app_label": "rewards"}))
    assert response.status_code == 200
    assert reverse("admin:rewards_pointentry_changelist").encode() in response.content
    assert builds == ["rewards"]


def test_staff_without_permissions_still_see_that_they_may_open_nothing(client, db):
    forget_kept_sidebars()
    client.force_login(factories.UserFactory(is_staff=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert b'id="nav-sidebar-apps"' not in response.content  # Unfold's list of (no) apps instead


def test_the_navigation_template_is_unfolds_but_for_the_kept_sidebar_list():
    """templates/unfold/helpers/navigation.html overrides Unfold's: when Unfold is upgraded and
    its template changes, copy it again and make the same two changes."""
    ours = (Path(settings.BASE_DIR) / "templates/unfold/helpers/navigation.html").read_text()
    theirs = (Path(unfold.__file__).parent / "templates/unfold/helpers/navigation.html").read_text()
    first_line, rest = ours.split("\n", 1)
    assert first_line.startswith("{% load i18n unfold console_sidebar %}{#")
    expected = theirs.split("\n", 1)[1].replace(
        '{% include "unfold/helpers/app_list.html" with app_list=available_apps %}', "{% sidebar_app_list %}")
    assert rest == expected
