"""Scopes: each viewset names the scope every action needs (`required_scopes`); an action
without an entry is refused, so a new action is closed until someone decides who may use it."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from .authentication import PartnerPrincipal


class HasScope(permissions.BasePermission):
    message = _("This API key does not have the scope this request needs.")

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, PartnerPrincipal):
            return False
        required = getattr(view, "required_scopes", {}).get(getattr(view, "action", None))
        if required is None:
            return False
        self.message = _("This API key lacks the scope %(scope)s.") % {"scope": required}
        return principal.has_scope(required)


class PartnerWideKey(permissions.BasePermission):
    """For what belongs to the whole partner, not to stores (webhook subscriptions): a key
    restricted to some stores may not see or change it."""

    message = _("This API key is restricted to some stores: it cannot manage the partner's webhooks. "
                "Use a key for all the partner's stores.")
    code = "store_restricted_key"

    def has_permission(self, request, view) -> bool:
        principal = request.user
        return isinstance(principal, PartnerPrincipal) and not principal.store_restricted
