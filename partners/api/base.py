"""The base of every partner API viewset, and helpers the apps' api.py modules share. (How a
request names a member, and which members it reaches, is members.presence.)"""

from __future__ import annotations

import functools
import threading

from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from rest_framework import serializers, viewsets

from core.shared_version import stamps_read_once
from partners.models import Store

from .authentication import PartnerPrincipal

# Larger values would only reach the database as an out-of-range error.
MAX_ID = 2**63 - 1
# A member's id in URLs: a UUID (Member.public_id), as the API shows it.
UUID_REGEX = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def activate_request_language(request) -> None:
    """The language of Accept-Language: the API lives outside i18n_patterns, where
    LocaleMiddleware would always pick the default language for unprefixed URLs."""
    language = translation.get_language_from_request(request, check_path=False)
    translation.activate(language)
    request.LANGUAGE_CODE = language


class APILanguageMiddleware:
    """The partner API's chain (settings.API_MIDDLEWARE) has no LocaleMiddleware: this sets the
    language for every request, so an answer given before any view (an unknown URL, a database
    outage) doesn't come out in the language of the thread's previous request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        activate_request_language(request)
        return self.get_response(request)


class PartnerViewSet(viewsets.GenericViewSet):
    """Answers in the language of Accept-Language (also behind the pages' middleware chain, as in
    Django's test client)."""

    lookup_value_regex = r"[0-9]{1,18}"

    def dispatch(self, request, *args, **kwargs):
        # The key, the earning rules, webhooks, triggers and challenges each check a stamp in the
        # shared cache: one read for all of them per request (core.shared_version).
        with stamps_read_once():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        activate_request_language(request._request)
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Language"] = translation.get_language()
        patch_vary_headers(response, ["Accept-Language"])
        return response

    @property
    def principal(self) -> PartnerPrincipal:
        return self.request.user

    @property
    def partner(self):
        return self.request.user.partner


@functools.cache
def _shared_serializer(serializer_class: type[serializers.BaseSerializer]) -> serializers.BaseSerializer:
    return serializer_class()


def represent(serializer_class: type[serializers.BaseSerializer], instance) -> dict:
    """`serializer_class(instance).data` for the hot paths: a new serializer deep-copies its
    fields, which costs more than a till's whole answer, so each process keeps one per class
    (they keep no state between calls; only for serializers that need no context)."""
    return _shared_serializer(serializer_class).to_representation(instance)


_kept_fields = threading.local()


class KeptFieldsMixin:
    """For the input serializers of hot paths. DRF deep-copies a serializer's declared fields for
    every new instance (Serializer.get_fields), and for a till's purchase that copy took longer
    than validating the body. Each thread keeps one copy per class and rebinds it to the class's
    next instance: the fields keep no state of a validation (the data, the errors and the context
    stay on the serializer). Only for a serializer that is never nested in another of its class."""

    @cached_property
    def fields(self):
        kept = _kept_fields.__dict__.setdefault("by_class", {})
        fields = kept.get(type(self))
        if fields is None:
            fields = kept[type(self)] = super().fields
            return fields
        fields.serializer = self
        for field in fields.values():
            field.parent = self
        return fields


class StrictFieldsMixin:
    """Fields a client may not set (or that don't exist) are refused with a field error, never
    silently ignored: a till that thinks it changed a balance must learn that it did not."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {}
            for name in data:
                if name in writable:
                    continue
                errors[name] = [_("This field cannot be changed.") if name in self.protected_fields()
                                else _("Unknown field.")]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def protected_fields(self) -> set[str]:
        return set(getattr(getattr(self, "Meta", None), "protected_fields", ())) | {
            name for name, field in self.fields.items() if field.read_only}


def store_for(principal: PartnerPrincipal, code: str | None, *, field: str = "store") -> Store | None:
    """The caller's store by its code, within what the key may act for."""
    if not code:
        if principal.store_restricted:
            raise serializers.ValidationError({field: [_("This API key is restricted to stores: name the store.")]})
        return None
    store = Store.objects.filter(partner=principal.partner, code=code).first()
    allowed = principal.allowed_store_ids
    if store is None or (allowed is not None and store.pk not in allowed):
        raise serializers.ValidationError({field: [_("Unknown store code.")]})
    return store
