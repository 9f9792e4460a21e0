"""Partner API: a till or web shop sells a paid (VIP) membership, at
POST /members/<id>/tier-memberships/, and reads the member's memberships (GET, same path).

The fee is a purchase of the calling partner (channel "membership") with the partner's order
reference: idempotent like purchases (the Idempotency-Key header, and the same order reference
again answers 200 with the first membership). The member is reached as in members.api (related
to the caller, or present by a query parameter). The fee earns no points
(rewards.tier_memberships).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from members.api import PRESENCE_QUERY_PARAMETERS, TierSerializer
from members.models import Member, Tier
from members.presence import presence_from, resolve_member
from partners.api.base import UUID_REGEX, PartnerViewSet, StrictFieldsMixin, store_for
from partners.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from partners.models import Scope

from .api import validate_purchase_time
from .models import TierMembership
from .tier_memberships import tier_membership_sell


class MembershipSaleSerializer(StrictFieldsMixin, serializers.Serializer):
    tier = serializers.PrimaryKeyRelatedField(queryset=Tier.objects.filter(kind=Tier.Kind.PAID),
                                              help_text="The paid tier's id; its fee is charged.")
    order_reference = serializers.CharField(max_length=80, help_text="Unique per partner, like a purchase's: the "
                                            "same order reference again returns the first membership.")
    store = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="The store's code.")
    occurred_at = serializers.DateTimeField(required=False, help_text="Default: now. At most a year back and a "
                                            "day ahead.")

    def validate_occurred_at(self, value):
        return validate_purchase_time(value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        attrs["store"] = store_for(self.context["principal"], attrs.get("store"))
        return attrs


class TierMembershipSerializer(serializers.ModelSerializer):
    tier = TierSerializer(read_only=True)
    fee_amount = serializers.DecimalField(source="fee_purchase.amount", max_digits=9, decimal_places=2,
                                          read_only=True, allow_null=True)
    fee_currency = serializers.CharField(source="fee_purchase.currency", read_only=True, allow_null=True)
    purchase_id = serializers.SerializerMethodField(help_text="The fee's purchase, for the partner that sold it.")

    class Meta:
        model = TierMembership
        fields = ["id", "tier", "source", "status", "starts", "ends", "fee_amount", "fee_currency", "purchase_id",
                  "created_at"]
        read_only_fields = fields

    def get_purchase_id(self, membership) -> int | None:
        purchase = membership.fee_purchase
        if purchase is None or purchase.partner_id != self.context["partner"].pk:
            return None  # another partner's sale is not ours to name
        return purchase.pk


class MemberTierMembershipViewSet(PartnerViewSet):
    """A member's paid and invitation memberships; selling a paid one."""

    lookup_field = "public_id"
    lookup_url_kwarg = "pk"
    lookup_value_regex = UUID_REGEX
    required_scopes = {"tier_memberships": Scope.MEMBERS_READ, "sell_membership": Scope.PURCHASES_WRITE}

    def get_queryset(self):
        return Member.objects.exclude(status=Member.Status.ERASED).order_by("-id")

    def get_object(self) -> Member:
        return resolve_member(self.principal, public_id=self.kwargs["pk"],
                              presence=presence_from(self.request.query_params), queryset=self.get_queryset())

    @extend_schema(summary="A member's paid and invitation memberships, newest first",
                   parameters=PRESENCE_QUERY_PARAMETERS, responses={200: TierMembershipSerializer(many=True)},
                   filters=False)
    @action(detail=True, methods=["get"], url_path="tier-memberships")
    def tier_memberships(self, request, pk=None):
        member = self.get_object()
        memberships = (TierMembership.objects.filter(member=member).select_related("tier", "fee_purchase")
                       .order_by("-starts", "-id")[:100])
        serializer = TierMembershipSerializer(memberships, many=True, context={"partner": self.partner})
        return Response(serializer.data)

    @extend_schema(summary="Sell (or renew) a paid membership; its fee is recorded as a purchase",
                   request=MembershipSaleSerializer, parameters=[IDEMPOTENCY_PARAMETER, *PRESENCE_QUERY_PARAMETERS],
                   responses={201: TierMembershipSerializer, 200: TierMembershipSerializer},
                   description="201: sold now (a renewal starts the day after the running membership ends). "
                               "200: this order reference was already sold. The fee earns no points; returned "
                               "within the return window (POST /purchases/<id>/returns/), it ends the membership.",
                   filters=False)
    @tier_memberships.mapping.post
    @idempotent
    def sell_membership(self, request, pk=None):
        member = self.get_object()
        serializer = MembershipSaleSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sale = tier_membership_sell(member_id=member.pk, tier=data["tier"], partner=self.partner,
                                    order_reference=data["order_reference"], store=data["store"],
                                    occurred_at=data.get("occurred_at"))
        membership = TierMembership.objects.select_related("tier", "fee_purchase").get(pk=sale.membership.pk)
        body = TierMembershipSerializer(membership, context={"partner": self.partner}).data
        return Response(body, status=status.HTTP_201_CREATED if sale.created else status.HTTP_200_OK)


def register(router) -> None:
    router.register("members", MemberTierMembershipViewSet, basename="member-tier-membership")

