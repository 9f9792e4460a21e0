"""The console's sidebar: grouped by what staff do, not by app.

Programme (what members can earn and get), members (people and their points), campaigns,
feedback, partners (tills, web shops, keys) and system. Each item shows only to staff who may
view its model; the scheduler's internals (Celery beat's schedules) only to administrators. A
model registered in the admin but listed nowhere here lands in its app's group, else in System,
so a new screen is never unreachable.

The sidebar is a function of the user's permissions (Django's `get_all_permissions`, what the
ModelBackend's `has_perm` checks), whether they are an administrator, and the language: it is
built once per process for each such key and reused (issue #24: building and rendering it cost
a changelist a fifth of its CPU). A permission granted or withdrawn changes the key, so the
next page shows it; nothing else it depends on changes while the process runs (the admin
registry, the groups below, the translation catalogues). Its HTML is kept too, keyed also by
which item is active (the site's `sidebar_html_key`, the `sidebar_app_list` template tag).
A ModelAdmin whose view permission depends on more than the user's permissions would have to
be part of the key: tests/loyalty_site/test_navigation.py compares the kept sidebar with a
fresh one for several roles.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.urls import get_script_prefix, reverse
from django.utils.text import capfirst
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

# (title, [(app_label, model_name), …])
GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    (_("Programme"), [
        ("rewards", "earningrule"), ("members", "tier"), ("rewards", "reward"), ("rewards", "stampcardprogram"),
        ("rewards", "cashbackprogram"), ("engagement", "challenge"), ("engagement", "badge"),
        ("offers", "offer"), ("rewards", "donationcause"), ("rewards", "donation"), ("referrals", "referralprogram"),
        ("rewards", "programmesettings"),
    ]),
    (_("Members"), [
        ("members", "member"), ("rewards", "tiermembership"), ("rewards", "purchase"), ("rewards", "purchasereturn"),
        ("rewards", "pointentry"), ("rewards", "redemption"), ("rewards", "stampcard"), ("referrals", "referral"),
        ("engagement", "challengeprogress"), ("engagement", "memberbadge"), ("offers", "memberoffer"),
        ("members", "tag"), ("members", "tierhistory"), ("members", "consentrecord"), ("members", "membermerge"),
        ("members", "privacyrequest"), ("transfers", "importjob"), ("transfers", "exportlog"),
    ]),
    (_("Campaigns"), [
        ("campaigns", "segment"), ("campaigns", "campaign"), ("campaigns", "message"), ("campaigns", "raffleentry"),
    ]),
    (_("Feedback"), [
        ("feedback", "survey"), ("feedback", "response"), ("feedback", "followup"), ("feedback", "complaint"),
    ]),
    (_("Partners"), [
        ("partners", "partner"), ("partners", "store"), ("rewards", "storedaytotal"), ("partners", "partnerapikey"),
        ("partners", "webhooksubscription"), ("partners", "webhookdelivery"), ("partners", "idempotencyrecord"),
    ]),
    (_("System"), [
        ("auth", "user"), ("auth", "group"), ("account", "emailaddress"), ("mfa", "authenticator"),
        ("auditlog", "logentry"),
    ]),
]
# Where a registered model not listed above goes, by app.
APP_GROUP = {"rewards": _("Programme"), "engagement": _("Programme"), "offers": _("Programme"),
             "members": _("Members"), "transfers": _("Members"), "referrals": _("Members"),
             "campaigns": _("Campaigns"), "feedback": _("Feedback"), "partners": _("Partners")}
ADMINISTRATORS_ONLY = {"django_celery_beat"}  # the scheduler's internals


class _Recent:
    """At most `size` values, the least recently used dropped first; safe across threads (two
    threads may both make a missing value: the same value, one of them kept)."""

    def __init__(self, size: int):
        self._size = size
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


# A few roles times two languages; the HTML also per active item (a few dozen screens). An HTML
# entry is about 45 kB (the whole sidebar of a superuser): at most about 6 MB per process.
_navigations = _Recent(64)
_html = _Recent(128)
_KEY_ATTRIBUTE = "_console_navigation_key"  # the request's key, computed once per request


def sidebar_navigation(request: HttpRequest) -> list[dict]:
    """UNFOLD["SIDEBAR"]["navigation"]: the groups with the items this user may open. Unfold
    copies the list before it marks the active item, so the kept one is never changed."""
    return _navigations.get_or_make(navigation_key(request), partial(_build_navigation, request))


def navigation_key(request: HttpRequest) -> tuple:
    """What the sidebar depends on: the user's permissions and administrator status, the language
    (titles, and the links' language prefix) and the script prefix (the links)."""
    key = getattr(request, _KEY_ATTRIBUTE, None)
    if key is None:
        user = request.user
        if user.is_active and user.is_superuser:  # every permission (has_perm answers True)
            access: tuple = ("superuser",)
        else:
            access = (_is_administrator(user), frozenset(user.get_all_permissions()))
        key = (access, get_language(), get_script_prefix())
        setattr(request, _KEY_ATTRIBUTE, key)
    return key


def sidebar_html_key(request: HttpRequest, context: dict) -> tuple | None:
    """What Unfold's sidebar HTML (unfold/helpers/app_list.html) depends on, given the page's
    context: the navigation's key and each item's active and permission state. None when it
    can't be kept: no sidebar, a sidebar this module did not make for the request, the "all
    applications" panel (it lists available_apps), or an item with parts computed per request
    (badges, link callbacks)."""
    navigation = context.get("sidebar_navigation")
    key = getattr(request, _KEY_ATTRIBUTE, None)  # set by sidebar_navigation for this request
    if not navigation or key is None or context.get("sidebar_show_all_applications"):
        return None
    states = []
    for group in navigation:
        if not set(group) <= _STATIC_GROUP_KEYS:
            return None
        for item in group["items"]:
            if not set(item) <= _STATIC_ITEM_KEYS:
                return None
            states.append((bool(item["active"]), bool(item["has_permission"])))
    return (key, tuple(states))


# What sidebar_navigation's groups and items hold once Unfold has processed them.
_STATIC_GROUP_KEYS = {"title", "separator", "collapsible", "items"}
_STATIC_ITEM_KEYS = {"title", "link", "active", "has_permission"}


def sidebar_html(key: tuple, render: Callable[[], str]) -> str:
    """The sidebar's HTML for `key` (sidebar_html_key), rendered by `render` when not yet kept."""
    return _html.get_or_make(key, render)


def forget_kept_sidebars() -> None:
    """For tests: drop what this process kept."""
    _navigations.clear()
    _html.clear()


def _build_navigation(request: HttpRequest) -> list[dict]:
    # Plain strings, not lazy ones: the key holds the language, and a kept lazy title would be
    # translated again on every page.
    administrator = _is_administrator(request.user)
    navigation = []
    for title, models in _placed_models():
        items = [_item(model) for model in models if _may_view(request, model, administrator)]
        if items:
            navigation.append({"title": str(title), "separator": True, "collapsible": False, "items": items})
    return navigation


def _placed_models() -> list[tuple[str, list[type[Model]]]]:
    registered = {(model._meta.app_label, model._meta.model_name): model for model in admin.site._registry}
    groups = [(title, [registered[key] for key in keys if key in registered]) for title, keys in GROUPS]
    listed = {key for _title, keys in GROUPS for key in keys}
    by_title = {str(title): models for title, models in groups}
    for key, model in sorted(registered.items()):
        if key not in listed:
            by_title[str(APP_GROUP.get(key[0], _("System")))].append(model)
    return groups


def _is_administrator(user) -> bool:
    return user.is_superuser or user.groups.filter(name="Administrator").exists()


def _may_view(request: HttpRequest, model: type[Model], administrator: bool) -> bool:
    if model._meta.app_label in ADMINISTRATORS_ONLY and not administrator:
        return False
    return admin.site._registry[model].has_view_or_change_permission(request)


def _item(model: type[Model]) -> dict:
    return {"title": str(capfirst(model._meta.verbose_name_plural)),
            "link": reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")}
