"""Partner API for purchases, returns, the rewards catalogue, redemptions and vouchers.

Thin: a serializer validates (and refuses absurd input: amounts outside 0.01–1,000,000, unknown
currencies, purchase times more than a year back or more than a day ahead), a service in
rewards.purchases / rewards.returns / rewards.vouchers do the work under its locks, a serializer shows the result.
A partner sees only its own purchases and the vouchers it issued (a key restricted to stores:
only those of its stores): anything else is a 404. Members are named as members.presence
says: by an id only when related, and spending points needs the member's presence.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import django_filters
from django.db.models import F, Prefetch, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.errors import ReferenceConflict
from members.api import TierSerializer
from members.models import Member
from members.presence import MEMBER_ID_HELP, MemberIdField, MemberReferenceSerializer, presence_from, resolve_member
from partners.api.base import MAX_ID, KeptFieldsMixin, PartnerViewSet, StrictFieldsMixin, represent, store_for
from partners.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from partners.api.pagination import PartnerCursorPagination
from partners.models import Scope

from . import eligibility, partner_redemptions, vouchers
from .models import (
    Channel,
    Currency,
    Donation,
    DonationCause,
    Purchase,
    PurchaseLine,
    PurchasePoints,
    PurchaseReturn,
    Redemption,
    Reward,
)
from .purchases import LineData, purchase_record, store_day_report
from .returns import ReturnLine, purchase_return

MAX_AMOUNT = Decimal("1000000")
MAX_LINES = 500


def money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=9, decimal_places=2, min_value=Decimal("0.01"), max_value=MAX_AMOUNT,
                                    **kwargs)


# --- Purchases -----------------------------------------------------------------------------------

def validate_purchase_time(value):
    now = timezone.now()
    if value < now - timedelta(days=365):
        raise serializers.ValidationError(_("The purchase is more than a year old."))
    if value > now + timedelta(days=1):
        raise serializers.ValidationError(_("The purchase time is in the future."))
    return value


# A membership fee is sold through /members/<id>/tier-memberships/ (rewards.api_memberships), never
# posted as a purchase: that would record the fee without the membership.
GOODS_CHANNELS = [(value, label) for value, label in Channel.choices if value != Channel.MEMBERSHIP]


class PurchaseLineInputSerializer(StrictFieldsMixin, serializers.Serializer):
    sku = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, default="",
                                     help_text="Product category, as earning rules name it.")
    quantity = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
    amount = money()


class PurchaseCreateSerializer(KeptFieldsMixin, StrictFieldsMixin, MemberReferenceSerializer):
    order_reference = serializers.CharField(max_length=80, help_text="Unique per partner: the same order "
                                            "reference again returns the first purchase and earns nothing.")
    store = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="The store's code.")
    channel = serializers.ChoiceField(choices=GOODS_CHANNELS, default=Channel.STORE)
    amount = money()
    currency = serializers.ChoiceField(choices=Currency.choices)
    occurred_at = serializers.DateTimeField(required=False, help_text="Default: now. At most a year back and a "
                                            "day ahead.")
    lines = PurchaseLineInputSerializer(many=True, required=False, max_length=MAX_LINES)

    def validate_occurred_at(self, value):
        return validate_purchase_time(value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        lines = attrs.get("lines")
        if lines and sum((line["amount"] for line in lines), Decimal(0)) != attrs["amount"]:
            raise serializers.ValidationError({"lines": [_("The line amounts must add up to the amount.")]})
        attrs["store"] = store_for(self.context["principal"], attrs.get("store"))
        return attrs


class PurchaseLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = PurchaseLine
        fields = ["id", "sku", "category", "quantity", "amount", "points", "returned_amount", "points_reversed"]


class PointsComponentSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField(help_text='What earned the points, e.g. "Gold tier ×1.25".')

    class Meta:
        model = PurchasePoints
        fields = ["kind", "label", "points", "rule_id"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_label(self, component) -> str:
        return component.describe()


class PurchaseSerializer(serializers.ModelSerializer):
    member_id = MemberIdField()
    store = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    breakdown = PointsComponentSerializer(many=True, read_only=True)
    lines = PurchaseLineSerializer(many=True, read_only=True)

    class Meta:
        model = Purchase
        fields = ["id", "member_id", "order_reference", "store", "channel", "amount", "currency", "occurred_at",
                  "points_earned", "points_pending", "available_at", "points_reversed", "returned_amount",
                  "breakdown", "lines", "created_at"]
        read_only_fields = fields


class ReturnLineInputSerializer(StrictFieldsMixin, serializers.Serializer):
    line_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="A line id from the purchase.")
    amount = money()


class ReturnCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    reference = serializers.CharField(max_length=80, help_text="Unique per purchase, e.g. the credit note number.")
    amount = money(required=False, help_text="What came back; spread over the lines by what is left of them.")
    lines = ReturnLineInputSerializer(many=True, required=False, max_length=MAX_LINES, allow_empty=False)

    def validate(self, attrs):
        if ("amount" in attrs) == ("lines" in attrs):
            raise serializers.ValidationError({"amount": [_("Give either an amount or lines.")]})
        return attrs


class PurchaseReturnSerializer(serializers.ModelSerializer):
    purchase_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = PurchaseReturn
        fields = ["id", "purchase_id", "reference", "amount", "points_reversed", "shortfall_points", "created_at"]
        read_only_fields = fields


class PurchaseFilter(django_filters.FilterSet):
    member = django_filters.UUIDFilter(field_name="member__public_id", help_text="The member's id.")
    order_reference = django_filters.CharFilter(max_length=80)
    store = django_filters.CharFilter(field_name="store__code", max_length=40, help_text="Store code.")
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Purchase
        fields = ["member", "order_reference", "store", "channel", "occurred_after", "occurred_before"]


def _breakdown():
    return Prefetch("breakdown", queryset=PurchasePoints.objects.select_related("rule", "tier").order_by("id"))


class PurchaseViewSet(PartnerViewSet):
    """The calling partner's purchases."""

    serializer_class = PurchaseSerializer
    filterset_class = PurchaseFilter
    required_scopes = {"list": Scope.PURCHASES_READ, "retrieve": Scope.PURCHASES_READ,
                       "create": Scope.PURCHASES_WRITE, "returns": Scope.PURCHASES_WRITE}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no partner
            return Purchase.objects.none()
        queryset = self.principal.within_stores(Purchase.objects.filter(partner=self.partner))
        if self.action in ("list", "retrieve"):
            queryset = (queryset.select_related("store").prefetch_related("lines", _breakdown())
                        .annotate(member_public_id=F("member__public_id")))
        return queryset.order_by("-id")

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(summary="List purchases")
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(PurchaseSerializer(page, many=True).data)

    @extend_schema(summary="Read a purchase")
    def retrieve(self, request, pk=None):
        return Response(PurchaseSerializer(self.get_object()).data)

    @extend_schema(summary="Post a purchase and earn its points", request=PurchaseCreateSerializer,
                   parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: PurchaseSerializer, 200: PurchaseSerializer},
                   description="201: recorded now. 200: this order reference was already recorded (nothing "
                               "earned again).")
    @idempotent
    def create(self, request):
        serializer = PurchaseCreateSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        member = data["member"]
        lines = [LineData(amount=line["amount"], category=line["category"], sku=line["sku"],
                          quantity=line["quantity"]) for line in data.get("lines") or ()]
        outcome = purchase_record(
            member_id=member.pk, partner=self.partner, order_reference=data["order_reference"], amount=data["amount"],
            currency=data["currency"], occurred_at=data.get("occurred_at"), store=data["store"],
            channel=data["channel"], lines=lines or None, tier_hint=member.tier_id or 0,
        )
        purchase = outcome.purchase  # its points and a tier change are announced by their events
        prefetch_related_objects([purchase], "lines", _breakdown())  # a new purchase has them already
        body = represent(PurchaseSerializer, purchase)
        return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)

    @extend_schema(summary="Return (part of) a purchase and reverse its points", request=ReturnCreateSerializer,
                   parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: PurchaseReturnSerializer, 200: PurchaseReturnSerializer},
                   description="201: recorded now. 200: a return with this reference was already recorded.")
    @action(detail=True, methods=["post"])
    @idempotent
    def returns(self, request, pk=None):
        purchase = self.get_object()
        serializer = ReturnCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        amount = data.get("amount") or sum((line["amount"] for line in data["lines"]), Decimal(0))
        existing = PurchaseReturn.objects.filter(purchase=purchase, reference=data["reference"]).first()
        if existing is not None:
            if existing.amount != amount:
                raise ReferenceConflict(reference=data["reference"])
            return Response(PurchaseReturnSerializer(existing).data, status=status.HTTP_200_OK)
        lines = [ReturnLine(line_id=line["line_id"], amount=line["amount"]) for line in data.get("lines") or ()]
        created = purchase_return(purchase_id=purchase.pk, reference=data["reference"], amount=data.get("amount"),
                                  lines=lines or None)
        return Response(PurchaseReturnSerializer(created).data, status=status.HTTP_201_CREATED)


# --- Rewards catalogue ---------------------------------------------------------------------------

class DonationCauseSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)

    class Meta:
        model = DonationCause
        fields = ["id", "name", "organisation", "website"]
        read_only_fields = fields


class RewardSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    terms = serializers.CharField(read_only=True)
    min_tier = TierSerializer(read_only=True, allow_null=True)
    cause = DonationCauseSerializer(read_only=True, allow_null=True,
                                    help_text="A donation reward's cause (it receives `value` EUR per redemption).")
    image = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField(help_text="With member_id: can the member redeem it now?")
    unavailable_reason = serializers.SerializerMethodField(help_text="With member_id: why not.")

    class Meta:
        model = Reward
        fields = ["id", "kind", "name", "description", "terms", "points_cost", "value", "currency", "stock",
                  "limit_per_member", "min_tier", "cause", "valid_from", "valid_until", "voucher_valid_days", "image",
                  "available", "unavailable_reason"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_image(self, reward) -> str | None:
        return reward.image.url if reward.image else None

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_available(self, reward) -> bool | None:
        reasons = self.context.get("reasons")
        return None if reasons is None else reasons.get(reward.pk) is None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_unavailable_reason(self, reward) -> str | None:
        reasons = self.context.get("reasons")
        return None if reasons is None else reasons.get(reward.pk)


class CatalogueQuerySerializer(serializers.Serializer):
    member_id = serializers.UUIDField(required=False, help_text="Say for each reward whether this member can "
                                      "redeem it. " + MEMBER_ID_HELP)
    card_number = serializers.CharField(required=False, max_length=32, help_text="Instead of member_id: presence.")
    customer_number = serializers.CharField(required=False, max_length=40,
                                            help_text="Instead of member_id: presence.")
    member_code = serializers.CharField(required=False, max_length=20, help_text="Instead of member_id: presence.")
    available_only = serializers.BooleanField(required=False, default=False,
                                              help_text="With a member: only what the member can afford and "
                                                        "is allowed to redeem now.")

    def validate(self, attrs):
        presence = presence_from(attrs, field="member_id")
        if attrs.get("member_id") and presence is not None:
            raise serializers.ValidationError({"member_id": [_("Name the member by only one of member_id, "
                                                               "card_number, customer_number or member_code.")]})
        attrs["member"] = None
        if attrs.get("member_id") or presence is not None:
            attrs["member"] = resolve_member(
                self.context["principal"], public_id=attrs.get("member_id"), presence=presence,
                queryset=Member.objects.select_related("tier"))
        if attrs.get("available_only") and attrs["member"] is None:
            raise serializers.ValidationError({"available_only": [_("Needs member_id.")]})
        return attrs


class CataloguePagination(PartnerCursorPagination):
    ordering = ("points_cost", "id")


class RewardViewSet(PartnerViewSet):
    """The rewards catalogue."""

    serializer_class = RewardSerializer
    pagination_class = CataloguePagination
    filter_backends = []
    required_scopes = {"list": Scope.REWARDS_READ, "retrieve": Scope.REWARDS_READ}

    def get_queryset(self):
        return eligibility.listed().select_related("min_tier", "cause")

    @extend_schema(summary="The rewards catalogue", parameters=[CatalogueQuerySerializer])
    def list(self, request):
        query = CatalogueQuerySerializer(data=request.query_params, context={"principal": self.principal})
        query.is_valid(raise_exception=True)
        queryset = self.get_queryset()
        member = query.validated_data["member"]
        if member is not None and query.validated_data["available_only"]:
            queryset = eligibility.redeemable(queryset, member)
        page = self.paginate_queryset(queryset)
        reasons = eligibility.unavailable_reasons(page, member, scopes=eligibility.ALL) if member is not None else None
        context = {"request": request, "reasons": reasons}
        return self.get_paginated_response(RewardSerializer(page, many=True, context=context).data)

    @extend_schema(summary="Read a reward")
    def retrieve(self, request, pk=None):
        return Response(RewardSerializer(self.get_object(), context={"request": request}).data)


# --- Redemptions and vouchers --------------------------------------------------------------------

class RewardSummarySerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)

    class Meta:
        model = Reward
        fields = ["id", "kind", "name", "value", "currency"]


class DonationSerializer(serializers.ModelSerializer):
    cause = DonationCauseSerializer(read_only=True)
    currency = serializers.SerializerMethodField()

    class Meta:
        model = Donation
        fields = ["cause", "amount", "currency", "created_at", "cancelled_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(help_text="Always EUR: donations are paid in euros."))
    def get_currency(self, donation) -> str:
        return "EUR"


class RedemptionSerializer(serializers.ModelSerializer):
    code = serializers.SerializerMethodField(help_text="The voucher code; null for a donation (no voucher).")
    member_id = MemberIdField()
    reward = RewardSummarySerializer(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True,
                                           help_text="When the voucher expires; null for a donation (never).")
    donation = serializers.SerializerMethodField(
        help_text="For a donation reward (kind donation; status donated): the cause and the euros it receives. "
                  "Null for a voucher.")

    class Meta:
        model = Redemption
        fields = ["id", "code", "member_id", "reward", "points", "status", "source", "issued_at", "expires_at",
                  "used_at", "cancelled_at", "donation"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_code(self, redemption) -> str | None:
        return redemption.display_code or None

    @extend_schema_field(DonationSerializer(allow_null=True))
    def get_donation(self, redemption) -> dict | None:
        if not redemption.is_donation:
            return None
        return DonationSerializer(redemption.donation).data


class RedemptionCreateSerializer(StrictFieldsMixin, MemberReferenceSerializer):
    """Spending points needs the member's presence: card number, customer number or member code.
    A member id alone is refused, even for a member the partner knows."""

    presence_required = True

    reward_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    store = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                  help_text="The store's code (required for a key restricted to stores).")

    def validate_reward_id(self, value):
        if not Reward.objects.filter(pk=value, in_catalogue=True).exists():
            raise serializers.ValidationError(_("No such reward in the catalogue."))
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        attrs["store"] = store_for(self.context["principal"], attrs.get("store"))
        return attrs


class RedemptionViewSet(PartnerViewSet):
    """Vouchers the calling partner issued for members' points (a key restricted to stores: at
    its stores)."""

    serializer_class = RedemptionSerializer
    filter_backends = []
    required_scopes = dict.fromkeys(["list", "retrieve", "create", "cancel"], Scope.VOUCHERS_REDEEM)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Redemption.objects.none()
        queryset = self.principal.within_stores(Redemption.objects.filter(issued_by__partner=self.partner),
                                                "issued_by__store_id")
        return (queryset.select_related("reward", "donation__cause").annotate(member_public_id=F("member__public_id"))
                .order_by("-id"))

    @extend_schema(summary="List the vouchers this partner issued")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RedemptionSerializer(page, many=True).data)

    @extend_schema(summary="Read a voucher this partner issued")
    def retrieve(self, request, pk=None):
        return Response(RedemptionSerializer(self.get_object()).data)

    @extend_schema(summary="Redeem a reward for a member: takes the points, returns the voucher or the donation",
                   description="Spending points needs the member to be present: name them by card_number, "
                               "customer_number or member_code (from the member's portal card); member_id is "
                               "refused here. A donation reward (kind `donation`) issues no voucher: the answer "
                               "has status `donated`, no `code` and no `expires_at`, and `donation` names the "
                               "cause and the euros it receives. A donation cannot be cancelled through the API.",
                   request=RedemptionCreateSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: RedemptionSerializer})
    @idempotent
    def create(self, request):
        serializer = RedemptionCreateSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        redemption = vouchers.redemption_create(member_id=data["member"].pk, reward_id=data["reward_id"],
                                                partner_id=self.partner.pk)  # announced by its event
        partner_redemptions.partner_redemption_record(partner=self.partner, redemption=redemption,
                                                    store=data["store"])
        return Response(RedemptionSerializer(redemption).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Cancel an unused voucher: its points go back to the member", request=None,
                   parameters=[IDEMPOTENCY_PARAMETER], responses={200: RedemptionSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        redemption = vouchers.redemption_cancel(redemption_id=self.get_object().pk)
        return Response(RedemptionSerializer(self.get_queryset().get(pk=redemption.pk)).data)


class VoucherCodeSerializer(StrictFieldsMixin, serializers.Serializer):
    code = serializers.CharField(max_length=40, help_text="As printed or typed; spaces, dashes and lower case "
                                 "are fine.")
    store = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="The store's code.")

    def validate(self, attrs):
        attrs["store"] = store_for(self.context["principal"], attrs.get("store"))
        return attrs


class VoucherViewSet(PartnerViewSet):
    """Vouchers at the till: check a code, then take it."""

    serializer_class = VoucherCodeSerializer
    filter_backends = []
    pagination_class = None
    required_scopes = {"validate": Scope.VOUCHERS_REDEEM, "consume": Scope.VOUCHERS_REDEEM}

    def _code(self, request):
        serializer = VoucherCodeSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(summary="Check a voucher code (changes nothing)", request=VoucherCodeSerializer,
                   responses={200: RedemptionSerializer})
    @action(detail=False, methods=["post"])
    def validate(self, request):
        data = self._code(request)
        redemption = vouchers.voucher_validate(code=data["code"], partner=self.partner, store=data["store"])
        return Response(RedemptionSerializer(redemption).data)

    @extend_schema(summary="Use a voucher once", request=VoucherCodeSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: RedemptionSerializer})
    @action(detail=False, methods=["post"])
    @idempotent
    def consume(self, request):
        data = self._code(request)
        redemption = vouchers.voucher_consume(code=data["code"], partner=self.partner, store=data["store"])
        return Response(RedemptionSerializer(redemption).data)  # announced by its event


# --- Store day totals: the base of the participation rate -------------------------------------

class StoreDayTotalSerializer(StrictFieldsMixin, serializers.Serializer):
    store = serializers.CharField(max_length=40, help_text="The store's code.")
    day = serializers.DateField(help_text="The business day, in the store's local time.")
    receipts = serializers.IntegerField(min_value=0, max_value=1_000_000,
                                        help_text="Every receipt of the day, with or without a loyalty card.")
    revenue = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"),
                                       max_value=MAX_AMOUNT * 100)
    currency = serializers.ChoiceField(choices=Currency.choices, default=Currency.EUR)

    def validate_day(self, value):
        today = timezone.localdate()
        if not today - timedelta(days=400) <= value <= today:
            raise serializers.ValidationError(_("The day must lie within the last 400 days."))
        return value

    def validate(self, attrs):
        attrs["store"] = store_for(self.context["principal"], attrs["store"])
        return attrs


class StoreDayTotalOutSerializer(serializers.Serializer):
    store = serializers.CharField(source="store.code")
    day = serializers.DateField()
    receipts = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    reported_at = serializers.DateTimeField()


class StoreDayTotalViewSet(PartnerViewSet):
    """A till reports how many receipts it printed in a day, members or not: the console shows
    the participation rate (the share of receipts with a loyalty card) from it."""

    serializer_class = StoreDayTotalSerializer
    filter_backends = []
    pagination_class = None
    required_scopes = {"create": Scope.PURCHASES_WRITE}

    @extend_schema(summary="Report a store's receipts of a day (again: replaces them)",
                   request=StoreDayTotalSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: StoreDayTotalOutSerializer})
    @idempotent
    def create(self, request):
        serializer = StoreDayTotalSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        total = store_day_report(**serializer.validated_data)
        return Response(StoreDayTotalOutSerializer(total).data)


def register(router) -> None:
    from . import api_balance, api_memberships

    api_balance.register(router)  # /members/<id>/balance/ and /entries/
    api_memberships.register(router)  # /members/<id>/tier-memberships/
    router.register("store-days", StoreDayTotalViewSet, basename="store-day")
    router.register("purchases", PurchaseViewSet, basename="purchase")
    router.register("rewards", RewardViewSet, basename="reward")
    router.register("redemptions", RedemptionViewSet, basename="redemption")
    router.register("vouchers", VoucherViewSet, basename="voucher")
