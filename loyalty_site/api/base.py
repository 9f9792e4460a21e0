"""The base of every partner API viewset, and helpers the apps' api.py modules share."""

from __future__ import annotations

import functools

from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets

from members.models import Member
from rewards.models import Store

from .authentication import PartnerPrincipal
from .presence import PRESENCE_FIELDS, presence_from, resolve_member

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


MEMBER_REFERENCE_FIELDS = ("member_id", *PRESENCE_FIELDS)
MEMBER_ID_HELP = ("The member's id in the API (opaque; reaches only members this partner enrolled or sold to, "
                  "at the key's stores).")


class MemberReferenceSerializer(serializers.Serializer):
    """A member named by exactly one of: `member_id` (reaches a related member), or what shows
    that the member is present: `card_number`, `customer_number`, `member_code`. Needs the
    caller in the context ("principal"); see loyalty_site.api.presence."""

    presence_required = False  # True: an id is not enough (spending points)
    member_fields = ("pk", "public_id", "tier_id", "status", "customer_number")  # what the views read

    member_id = serializers.UUIDField(required=False, help_text=MEMBER_ID_HELP)
    card_number = serializers.CharField(required=False, max_length=32, help_text="Scanned at the till: presence.")
    customer_number = serializers.CharField(required=False, max_length=40, help_text="Presence, like the card.")
    member_code = serializers.CharField(required=False, max_length=20,
                                        help_text="The short-lived code from the member's portal card: presence.")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        given = [name for name in MEMBER_REFERENCE_FIELDS if attrs.get(name) not in (None, "")]
        if len(given) != 1:
            raise serializers.ValidationError({"member_id": [_(
                "Name the member by exactly one of member_id, card_number, customer_number or member_code.")]})
        if given == ["member_id"] and self.presence_required:
            raise serializers.ValidationError({"member_id": [_(
                "Spending points needs the member to be present: send card_number, customer_number or "
                "member_code instead of member_id.")]})
        attrs["member"] = resolve_member(
            self.context["principal"], public_id=attrs.get("member_id"), presence=presence_from(attrs),
            queryset=Member.objects.only(*self.member_fields))
        return attrs


@extend_schema_field(OpenApiTypes.UUID)
class MemberIdField(serializers.Field):
    """A member's id as the API shows it: the opaque public id, never the database key. Reads an
    annotation `member_public_id` when the queryset has one (lists: no query per row), else the
    object's loaded member."""

    def __init__(self, **kwargs):
        kwargs.update(read_only=True, source="*")
        super().__init__(**kwargs)

    def to_representation(self, instance):
        public_id = getattr(instance, "member_public_id", None)
        if public_id is None:
            member = getattr(instance, "member", None)
            public_id = member.public_id if member is not None else None
        return str(public_id) if public_id is not None else None


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
