"""Partner API for members: enrol, look up, read, update personal data, erase (the balance and
the ledger of a member: rewards/api_balance.py, under the same /members/<id>/ paths).

Thin, as everywhere in the API: a serializer validates, a service changes, a serializer shows.
Members are shared by every partner of the programme (a card works in every shop), but a
partner reaches a member only when the member is present (card number, customer number or
member code in the request) or related to it (enrolled or bought there): every member this
viewset touches is found through members.presence. Ids are the opaque `public_id`.
Purchases are not shared: ledger entries of another partner's purchases show without their
reference.
"""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from members.presence import (
    PRESENCE_FIELDS,
    presence_from,
    presence_guard,
    presence_missed,
    reach_of,
    resolve_member,
)
from partners.api.base import UUID_REGEX, PartnerViewSet, StrictFieldsMixin, represent, store_for
from partners.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from partners.models import Scope

from . import services
from .erasure import member_erase
from .models import Member, PrivacyRequest, Tier
from .selectors import Presence, members_visible_to

COUNTRY = serializers.RegexField(r"^[A-Z]{2}$", max_length=2, required=False,
                                 help_text="ISO 3166 alpha-2 code, e.g. DE, AT, CH.")


# --- Serializers ---------------------------------------------------------------------------------

class TierSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True, help_text="In the language of the request.")

    class Meta:
        model = Tier
        fields = ["id", "name", "rank", "kind", "threshold_points", "earn_multiplier", "discount_percent",
                  "fee_amount", "fee_currency", "duration_months"]


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True,
                               help_text="The member's id in the API: opaque, not the database key.")
    tier = TierSerializer(read_only=True, allow_null=True)
    # A card handed out at a till may have no e-mail yet: null then, never "" (not an e-mail).
    email = serializers.EmailField(read_only=True, allow_null=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["email"] = data["email"] or None
        return data

    class Meta:
        model = Member
        fields = ["id", "customer_number", "card_number", "email", "salutation", "first_name", "last_name", "phone",
                  "birth_date", "street", "postal_code", "city", "country", "language", "status", "tier",
                  "points_balance", "points_pending", "joined_at"]
        read_only_fields = fields


def _validate_birth_date(value):
    if value is not None and not (timezone.localdate() - timedelta(days=130 * 366) <= value <= timezone.localdate()):
        raise serializers.ValidationError(_("Please give a real birth date."))
    return value


class MemberUpdateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """The personal data a partner may change. Balance, tier, status, numbers and the e-mail
    (the member's portal login) are not among them: sending one is a field error."""

    country = COUNTRY

    class Meta:
        model = Member
        fields = list(services.PROFILE_FIELDS)
        protected_fields = ["id", "customer_number", "card_number", "email", "status", "tier", "points_balance",
                            "points_pending", "joined_at", "user", "is_staff", "merged_into", "tier_granted_until"]

    def validate_birth_date(self, value):
        return _validate_birth_date(value)


class MemberEnrolSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    country = COUNTRY
    store = serializers.CharField(max_length=40, required=False, allow_blank=True, write_only=True,
                                  help_text="The store's code (required for a key restricted to stores).")

    class Meta:
        model = Member
        fields = ["email", "customer_number", *services.ENROL_FIELDS, "store"]
        extra_kwargs = {"customer_number": {"required": False, "validators": []}}
        protected_fields = MemberUpdateSerializer.Meta.protected_fields

    def validate_birth_date(self, value):
        return _validate_birth_date(value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        attrs["store"] = store_for(self.context["principal"], attrs.get("store"))
        return attrs


class MemberErasureRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    """No fields: the member is in the URL. Anything sent is refused rather than ignored."""


class MemberErasureSerializer(serializers.Serializer):
    member_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Member.Status.choices, help_text="Always `erased`.")
    erased_at = serializers.DateTimeField()


# --- Filters -------------------------------------------------------------------------------------

class MemberLookupFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(method="filter_email", max_length=254,
                                      help_text="Case-insensitive. Finds only members related to the partner.")
    customer_number = django_filters.CharFilter(max_length=40, help_text="Presence: finds any member.")
    card_number = django_filters.CharFilter(max_length=32, help_text="Presence: finds any member.")
    member_code = django_filters.CharFilter(method="filter_member_code", max_length=20,
                                            help_text="The code from the member's portal card. Presence: finds "
                                                      "any member while the code is valid.")

    class Meta:
        model = Member
        fields = ["email", "customer_number", "card_number", "member_code"]

    def filter_member_code(self, queryset, name, value):
        return queryset.filter(Presence(field="member_code", value=value).matches())

    def filter_email(self, queryset, name, value):
        # LOWER(email) = … over non-empty e-mails: the unique index member_email_unique_ci answers it.
        return queryset.exclude(email="").alias(email_lower=Lower("email")).filter(email_lower=value.strip().lower())


# --- The viewset ---------------------------------------------------------------------------------

PRESENCE_QUERY_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, description="Presence: reach a member this partner is not related to "
                     "(it must be the member of the id).")
    for name in PRESENCE_FIELDS
]


class MemberViewSet(PartnerViewSet):
    """Members of the programme, as far as the caller may reach them (members.presence)."""

    serializer_class = MemberSerializer
    filterset_class = MemberLookupFilter
    lookup_field = "public_id"
    lookup_url_kwarg = "pk"
    lookup_value_regex = UUID_REGEX
    required_scopes = {
        "list": Scope.MEMBERS_READ, "retrieve": Scope.MEMBERS_READ, "create": Scope.MEMBERS_WRITE,
        "partial_update": Scope.MEMBERS_WRITE, "erasure": Scope.MEMBERS_ERASE,
    }

    def get_queryset(self):
        return Member.objects.exclude(status=Member.Status.ERASED).select_related("tier").order_by("-id")

    def get_object(self) -> Member:
        """The member of the URL: related to the caller, or present by a query parameter."""
        return resolve_member(self.principal, public_id=self.kwargs["pk"],
                              presence=presence_from(self.request.query_params), queryset=self.get_queryset())

    def filter_queryset(self, queryset):
        # The look-up filters belong to the list; a member's own pages ignore them.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(summary="Look up members by card number, customer number, member code or e-mail",
                   description="At least one of the filters is required: partners look members up, they do not "
                               "list the whole programme. Card number, customer number and member code show that "
                               "the member is present and find any member; an e-mail alone finds only members "
                               "related to the partner (enrolled or bought there).")
    def list(self, request):
        params = request.query_params
        if not any(params.get(name) for name in MemberLookupFilter.Meta.fields):
            raise serializers.ValidationError(
                {"email": [_("Look members up by card_number, customer_number, member_code or email.")]})
        queryset = self.get_queryset()
        by_presence = any(params.get(name) for name in PRESENCE_FIELDS)
        if by_presence:
            presence_guard(self.principal)
        else:  # an e-mail alone: only members it knows
            queryset = members_visible_to(reach_of(self.principal)).select_related("tier").order_by("-id")
        page = self.paginate_queryset(self.filter_queryset(queryset))
        if by_presence and not page:
            presence_missed(self.principal)
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(summary="Read a member", parameters=PRESENCE_QUERY_PARAMETERS)
    def retrieve(self, request, pk=None):
        return Response(MemberSerializer(self.get_object()).data)

    @extend_schema(summary="Enrol a member", request=MemberEnrolSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: MemberSerializer},
                   description="The member is related to the partner (and the store) from then on.")
    @idempotent
    def create(self, request):
        serializer = MemberEnrolSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        member = services.member_enrol(**serializer.validated_data, partner=self.partner)  # announced by its event
        return Response(MemberSerializer(member).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Update a member's personal data", request=MemberUpdateSerializer,
                   responses={200: MemberSerializer}, parameters=PRESENCE_QUERY_PARAMETERS)
    def partial_update(self, request, pk=None):
        member = self.get_object()
        serializer = MemberUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data:
            member = services.member_update_profile(member_id=member.pk, **serializer.validated_data)
        return Response(MemberSerializer(member).data)

    @extend_schema(summary="Erase a member at their request (Art. 17 DSGVO)",
                   description="For a member who asked the partner (at a till, by letter) to be erased, and whom the "
                               "partner reaches (related, or present by a query parameter). The member "
                               "is anonymised at once, their open vouchers are cancelled and their remaining points "
                               "forfeited; the card and customer number stop working. Afterwards the member is not "
                               "found any more (404). The answer holds no personal data.",
                   request=MemberErasureRequestSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: MemberErasureSerializer}, filters=False)
    @action(detail=True, methods=["post"])
    @idempotent
    def erasure(self, request, pk=None):
        MemberErasureRequestSerializer(data=request.data or {}).is_valid(raise_exception=True)
        member = member_erase(member_id=self.get_object().pk, channel=PrivacyRequest.Channel.API,
                              partner=self.partner)
        return Response(represent(MemberErasureSerializer, {"member_id": member.public_id, "status": member.status,
                                                            "erased_at": member.updated_at}))


def register(router) -> None:
    router.register("members", MemberViewSet, basename="member")
