"""Partner API keys: `Authorization: Api-Key <prefix>.<secret>`.

One query per request: the key by its prefix, joined with its partner, plus whether the key is
restricted to stores. The secret is checked against its SHA-512 hash in constant time (a fast
hash is right for a random key of ~238 bits; a password hasher would cost more than the rest
of the request). Revoked or expired keys and inactive partners are refused with 401.
"""

from __future__ import annotations

from functools import cached_property

from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from loyalty_site.models import PartnerAPIKey

KEYWORD = "Api-Key"


class PartnerPrincipal:
    """`request.user` of an API request: the partner behind a key (not a Django user)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, key: PartnerAPIKey):
        self.key = key
        self.partner = key.partner

    def __str__(self) -> str:
        return f"{self.partner} ({self.key.name})"

    def has_scope(self, scope: str) -> bool:
        return self.key.has_scope(scope)

    @property
    def store_restricted(self) -> bool:
        return self.key.store_restricted

    @cached_property
    def allowed_store_ids(self) -> frozenset[int] | None:
        """The stores this key may act for; None: all of the partner's stores."""
        if not self.key.store_restricted:
            return None
        return frozenset(self.key.stores.values_list("pk", flat=True))


class PartnerAPIKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _separator, raw_key = header.partition(" ")
        if keyword.lower() != KEYWORD.lower():
            return None  # no key at all: NotAuthenticated (401) from the permission check
        raw_key = raw_key.strip()
        prefix, dot, _secret = raw_key.partition(".")
        if not dot or not prefix:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        through = PartnerAPIKey.stores.through
        key = (PartnerAPIKey.objects.select_related("partner")
               .annotate(store_restricted=Exists(through.objects.filter(partnerapikey_id=OuterRef("pk"))))
               .filter(prefix=prefix, revoked=False).first())
        if key is None or not key.is_valid(raw_key) or key.has_expired or not key.partner.active:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        return PartnerPrincipal(key), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return KEYWORD


class PartnerAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = PartnerAPIKeyAuthentication
    name = "PartnerApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'A partner API key, sent as "Api-Key <key>". Create one with '
                           '`manage.py create_partner_key "<partner>" --scopes members:read,purchases:write`.',
        }
