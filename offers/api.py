"""Partner API: a member's coupons at /members/<id>/coupons/ (reached like the balance: related to
the caller, or present by a query parameter, members.presence) and activating one at the till,
POST /members/<id>/coupons/<coupon id>/activate/. A purchase applies activated coupons by
itself; its breakdown (rewards.api) names each one (kind "offer")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from members.api import PRESENCE_QUERY_PARAMETERS
from members.models import Member
from members.presence import presence_from, resolve_member
from partners.api.base import UUID_REGEX, PartnerViewSet
from partners.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from partners.models import Scope

from . import selectors, services
from .selectors import CouponView

STATES = ["available", "activated", "upcoming", "used", "expired"]


class CouponSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The member's coupon: use it to activate.")
    offer_id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    effect = serializers.ChoiceField(choices=["multiplier", "bonus"])
    value = serializers.DecimalField(max_digits=10, decimal_places=2,
                                     help_text="The multiplier (2.00 = double points) or the bonus points.")
    summary = serializers.CharField(help_text='E.g. "2× points" in the language asked for.')
    category = serializers.CharField(help_text="Empty: any.")
    sku = serializers.CharField(help_text="Empty: any.")
    store = serializers.CharField(allow_null=True, help_text="The store's code; null: any store.")
    min_spend = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True,
                                         help_text="EUR on the matching products of one purchase.")
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()
    uses_per_member = serializers.IntegerField()
    uses = serializers.IntegerField()
    activated_at = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=STATES)


def coupon_data(view: CouponView) -> dict:
    offer = view.offer
    return {
        "id": view.coupon.pk, "offer_id": offer.pk, "name": offer.name, "description": offer.description,
        "effect": offer.effect, "value": offer.value, "summary": view.effect, "category": offer.category,
        "sku": offer.sku, "store": offer.store.code if offer.store_id else None, "min_spend": offer.min_spend,
        "valid_from": offer.valid_from, "valid_until": offer.valid_until, "uses_per_member": offer.uses_per_member,
        "uses": view.coupon.uses, "activated_at": view.coupon.activated_at, "state": view.state,
    }


class MemberCouponsViewSet(PartnerViewSet):
    """A member's coupons, as far as the caller may reach the member."""

    lookup_field = "public_id"
    lookup_url_kwarg = "pk"
    lookup_value_regex = UUID_REGEX
    required_scopes = {"coupons": Scope.MEMBERS_READ, "activate_coupon": Scope.PURCHASES_WRITE}
    pagination_class = None

    def get_queryset(self):
        return Member.objects.exclude(status=Member.Status.ERASED).order_by("-id")

    def get_object(self) -> Member:
        return resolve_member(self.principal, public_id=self.kwargs["pk"],
                              presence=presence_from(self.request.query_params), queryset=self.get_queryset())

    @extend_schema(summary="A member's current coupons (not yet expired)", responses=CouponSerializer(many=True),
                   parameters=PRESENCE_QUERY_PARAMETERS, filters=False)
    @action(detail=True, methods=["get"])
    def coupons(self, request, pk=None):
        member = self.get_object()
        return Response([CouponSerializer(coupon_data(view)).data for view in selectors.coupon_views(member)])

    @extend_schema(summary="Activate a member's coupon (at the till): the purchase posted next applies it",
                   request=None, responses={200: CouponSerializer},
                   parameters=[IDEMPOTENCY_PARAMETER, *PRESENCE_QUERY_PARAMETERS])
    @action(detail=True, methods=["post"], url_path=r"coupons/(?P<coupon_id>[0-9]{1,18})/activate")
    @idempotent
    def activate_coupon(self, request, pk=None, coupon_id=None):
        member = self.get_object()
        coupon = services.member_offer_activate(member_id=member.pk, member_offer_id=int(coupon_id))
        coupon = selectors.coupons_of(member, include_expired=True).get(pk=coupon.pk)
        return Response(CouponSerializer(coupon_data(CouponView(coupon))).data)


def register(router) -> None:
    router.register("members", MemberCouponsViewSet, basename="member-coupons")
