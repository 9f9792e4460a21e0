"""Partner API: a member's balance and ledger entries, at /members/<id>/balance/ and
/members/<id>/entries/ (registered by rewards.api next to members' own viewset on the same
prefix). The member is reached as in members.api: related to the caller, or present by a query
parameter (members.presence). Entries of another partner's purchases show without
their reference.
"""

from __future__ import annotations

import functools
from datetime import timedelta

import django_filters
from django.conf import settings
from django.db.models import F
from django.utils import timezone, translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from members.api import PRESENCE_QUERY_PARAMETERS, TierSerializer
from members.models import Member, Tier
from members.presence import (
    member_not_found,
    presence_from,
    presence_guard,
    presence_missed,
    reach_of,
    resolve_member,
)
from partners.api.base import UUID_REGEX, PartnerViewSet, represent
from partners.models import Scope

from .figures import member_with_figures
from .models import PointEntry
from .rule_cache import tier_by_id
from .selectors import tier_progress
from .vouchers import member_discount_percent


class BalanceSerializer(serializers.Serializer):
    member_id = serializers.UUIDField()
    available = serializers.IntegerField(help_text="Points the member can spend now.")
    pending = serializers.IntegerField(help_text="Points held until the return window of their purchases ends.")
    tier = TierSerializer(allow_null=True)
    next_tier = TierSerializer(allow_null=True)
    qualifying_points = serializers.IntegerField(help_text="Points earned in the rolling tier window.")
    points_to_next_tier = serializers.IntegerField()
    progress_percent = serializers.IntegerField(min_value=0, max_value=100)
    expiring_points = serializers.IntegerField(help_text="Points that expire by `expiring_until` unless spent.")
    expiring_until = serializers.DateTimeField()
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2,
                                                help_text="The member discount a till grants (from the tier).")


@functools.cache
def _balance_fields():
    return BalanceSerializer().fields


def tier_representation(tier: Tier | None) -> dict | None:
    """TierSerializer's answer for a tier of the process's ladder (rewards.rule_cache), kept on
    that copy per language: a change of the ladder brings new copies, so nothing goes stale."""
    if tier is None:
        return None
    language = translation.get_language()
    kept = tier.__dict__.setdefault("_api_representation", {})
    if language not in kept:
        kept[language] = represent(TierSerializer, tier)
    return kept[language]


def balance_representation(data: dict) -> dict:
    """BalanceSerializer's answer, field by field in its order, with the two tiers from
    tier_representation: the nested tier serializers were a fifth of a balance read's Python."""
    body = {}
    for name, field in _balance_fields().items():
        value = data[name]
        if isinstance(field, TierSerializer):
            body[name] = tier_representation(value)
        else:
            body[name] = None if value is None else field.to_representation(value)
    return body


class LedgerEntrySerializer(serializers.ModelSerializer):
    reason = serializers.SerializerMethodField()
    purchase_id = serializers.SerializerMethodField(help_text="Only for the calling partner's own purchases.")

    class Meta:
        model = PointEntry
        fields = ["id", "kind", "points", "created_at", "expires_at", "reason", "purchase_id"]

    def _own(self, entry) -> bool:
        """The caller's own purchase: its partner's, and at one of its stores for a restricted key."""
        if entry.purchase_id is None or entry.purchase_partner_id != self.context["partner"].pk:
            return False
        stores = self.context.get("store_ids")
        return stores is None or entry.purchase_store_id in stores

    @extend_schema_field(OpenApiTypes.STR)
    def get_reason(self, entry) -> str:
        if entry.purchase_id is not None and not self._own(entry):
            return str(entry.get_kind_display())  # another partner's order reference is not ours to show
        return entry.shown_reason

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_purchase_id(self, entry) -> int | None:
        return entry.purchase_id if self._own(entry) else None


class LedgerEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=PointEntry.Kind.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = PointEntry
        fields = ["kind", "created_after", "created_before"]


class MemberPointsViewSet(PartnerViewSet):
    """A member's points, as far as the caller may reach the member."""

    lookup_field = "public_id"
    lookup_url_kwarg = "pk"
    lookup_value_regex = UUID_REGEX
    required_scopes = {"balance": Scope.MEMBERS_READ, "entries": Scope.MEMBERS_READ}

    def get_queryset(self):
        return Member.objects.exclude(status=Member.Status.ERASED).select_related("tier").order_by("-id")

    def get_object(self) -> Member:
        """The member of the URL: related to the caller, or present by a query parameter."""
        return resolve_member(self.principal, public_id=self.kwargs["pk"],
                              presence=presence_from(self.request.query_params), queryset=self.get_queryset())

    @extend_schema(summary="A member's balance, tier progress and expiring points", responses=BalanceSerializer,
                   parameters=PRESENCE_QUERY_PARAMETERS, filters=False)
    @action(detail=True, methods=["get"])
    def balance(self, request, pk=None):
        # One statement: the member, if the caller may reach them, with their qualifying and
        # expiring points (the key and the tier ladder come from the process's caches). A till
        # asks this before every sale.
        presence = presence_from(request.query_params)
        if presence is not None:
            presence_guard(self.principal)
        reachable = presence.sql() if presence is not None else reach_of(self.principal).related_sql()
        until = timezone.now() + timedelta(days=settings.LOYALTY_EXPIRY_WARNING_DAYS)
        member = member_with_figures(public_id=pk, expiring_until=until, reachable=reachable)
        if member is None:
            if presence is not None:
                presence_missed(self.principal)
            raise member_not_found()
        self.check_object_permissions(request, member)
        member.tier = tier_by_id(member.tier_id)
        progress = tier_progress(member, qualifying=member.qualifying)
        data = {
            "member_id": member.public_id, "available": member.points_balance, "pending": member.points_pending,
            "tier": progress.current, "next_tier": progress.next, "qualifying_points": progress.qualifying_points,
            "points_to_next_tier": progress.points_to_next, "progress_percent": progress.percent,
            "expiring_points": member.expiring, "expiring_until": until,
            "discount_percent": member_discount_percent(member),
        }
        return Response(balance_representation(data))

    @extend_schema(summary="A member's ledger entries, newest first", responses=LedgerEntrySerializer(many=True),
                   parameters=[OpenApiParameter("kind", enum=PointEntry.Kind.values),
                               OpenApiParameter("created_after", OpenApiTypes.DATETIME),
                               OpenApiParameter("created_before", OpenApiTypes.DATETIME),
                               *PRESENCE_QUERY_PARAMETERS],
                   filters=False)
    @action(detail=True, methods=["get"])
    def entries(self, request, pk=None):
        member = self.get_object()
        queryset = PointEntry.objects.filter(member=member).annotate(purchase_partner_id=F("purchase__partner_id"),
                                                                     purchase_store_id=F("purchase__store_id"))
        filterset = LedgerEntryFilter(request.query_params, queryset=queryset, request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        serializer = LedgerEntrySerializer(page, many=True, context={"partner": self.partner,
                                                                     "store_ids": self.principal.allowed_store_ids})
        return self.get_paginated_response(serializer.data)


def register(router) -> None:
    router.register("members", MemberPointsViewSet, basename="member-points")
