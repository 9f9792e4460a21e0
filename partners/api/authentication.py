"""Partner API keys: `Authorization: Api-Key <prefix>.<secret>`.

Each process keeps the active keys it has seen (with their partner and whether they are
restricted to stores) under a shared version stamp that any change of a key, its stores or a
partner replaces: a revocation counts on the next request everywhere, and a till's request costs
a cache read instead of a query. Unknown prefixes are never remembered. The secret is checked
against its SHA-512 hash in constant time on every request (a fast hash is right for a random
key of ~238 bits; a password hasher would cost more than the rest of the request). Revoked or
expired keys and inactive partners are refused with 401.
"""

from __future__ import annotations

from functools import cached_property

from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.shared_version import SharedVersion
from partners.models import Partner, PartnerAPIKey

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
        """The stores this key may act for; None: all of the partner's stores. Read with the key
        into the process's copy (every member read of a restricted key checks relations by them)."""
        if not self.key.store_restricted:
            return None
        store_ids = getattr(self.key, "store_ids", None)
        if store_ids is None:
            store_ids = self.key.store_ids = frozenset(self.key.stores.values_list("pk", flat=True))
        return store_ids

    def within_stores(self, queryset: QuerySet, store_field: str = "store_id") -> QuerySet:
        """`queryset` limited to the key's stores (unchanged for a key of the whole partner)."""
        allowed = self.allowed_store_ids
        return queryset if allowed is None else queryset.filter(**{f"{store_field}__in": allowed})


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
        key = active_key(prefix)
        if key is None or not key.is_valid(raw_key) or key.has_expired or not key.partner.active:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        return PartnerPrincipal(key), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return KEYWORD


KEYS_VERSION = SharedVersion("loyalty:api-keys-version")
_known_keys: dict = {"version": None, "by_prefix": {}}


def active_key(prefix: str) -> PartnerAPIKey | None:
    """The unrevoked key with this prefix, with its partner, from this process's copy."""
    version = KEYS_VERSION.current()
    if _known_keys["version"] != version:
        _known_keys.update(version=version, by_prefix={})
    key = _known_keys["by_prefix"].get(prefix)
    if key is None:
        through = PartnerAPIKey.stores.through
        key = (PartnerAPIKey.objects.select_related("partner")
               .annotate(store_restricted=Exists(through.objects.filter(partnerapikey_id=OuterRef("pk"))))
               .filter(prefix=prefix, revoked=False).first())
        if key is not None:
            _known_keys["by_prefix"][prefix] = key
    return key


def keys_changed() -> None:
    """Call after changing keys with a queryset update (which sends no signal)."""
    KEYS_VERSION.bump_now_and_on_commit()


@receiver([post_save, post_delete], sender=PartnerAPIKey)
@receiver([post_save, post_delete], sender=Partner)
@receiver(m2m_changed, sender=PartnerAPIKey.stores.through)
def _key_or_partner_changed(**kwargs) -> None:
    keys_changed()


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
