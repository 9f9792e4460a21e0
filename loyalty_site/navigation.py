"""The console's sidebar: grouped by what staff do, not by app.

Programme (what members can earn and get), members (people and their points), campaigns,
feedback, partners (tills, web shops, keys) and system. Each item shows only to staff who may
view its model; the scheduler's internals (Celery beat's schedules) only to administrators. A
model registered in the admin but listed nowhere here lands in its app's group, else in System,
so a new screen is never unreachable.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils.text import capfirst
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


def sidebar_navigation(request: HttpRequest) -> list[dict]:
    """UNFOLD["SIDEBAR"]["navigation"]: the groups with the items this user may open."""
    administrator = _is_administrator(request.user)
    navigation = []
    for title, models in _placed_models():
        items = [_item(model) for model in models if _may_view(request, model, administrator)]
        if items:
            navigation.append({"title": title, "separator": True, "collapsible": False, "items": items})
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
    return {"title": capfirst(model._meta.verbose_name_plural),
            "link": reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")}
