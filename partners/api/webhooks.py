"""The webhook subscription endpoints: a partner subscribes its URLs to events, lists and ends its
subscriptions and reads their delivery history. The outbox itself is partners/webhooks.py."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from partners import services
from partners.models import Scope, WebhookDelivery, WebhookEvent, WebhookSubscription
from partners.webhooks import delivery_error_text

from .base import PartnerViewSet
from .idempotency import IDEMPOTENCY_PARAMETER, idempotent
from .permissions import HasScope, PartnerWideKey


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1,
                                   max_length=len(WebhookEvent.choices))

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "active", "created_at"]
        read_only_fields = ["id", "active", "created_at"]


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(read_only=True, help_text=str(_(
        "The signing secret, shown only in this response. Keep it to verify X-Treuepunkt-Signature.")))

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "event", "event_id", "payload", "status", "attempts", "last_status_code", "last_error",
                  "last_attempt_at", "delivered_at", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["last_error"] = delivery_error_text(data["last_error"])
        return data


PARTNER_WIDE = ("Webhooks are partner-wide: they announce events at all of the partner's stores. A key "
                "restricted to some stores is refused with 403 (code `store_restricted_key`).")


@extend_schema_view(**{action_name: extend_schema(description=PARTNER_WIDE)
                       for action_name in ("list", "retrieve", "create", "destroy", "deliveries")})
class WebhookSubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PartnerViewSet):
    """Webhook subscriptions of the calling partner (keys for all its stores only)."""

    serializer_class = WebhookSubscriptionSerializer
    permission_classes = [HasScope, PartnerWideKey]
    required_scopes = dict.fromkeys(["list", "retrieve", "create", "destroy", "deliveries"], Scope.WEBHOOKS_MANAGE)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookSubscription.objects.none()
        return WebhookSubscription.objects.filter(partner=self.request.user.partner, active=True).order_by("-id")

    @extend_schema(request=WebhookSubscriptionSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: WebhookSubscriptionCreatedSerializer})
    @idempotent
    def create(self, request):
        serializer = WebhookSubscriptionSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        subscription = services.webhook_subscription_create(partner=request.user.partner, **serializer.validated_data)
        return Response(WebhookSubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        subscription = self.get_object()
        services.webhook_subscription_deactivate(subscription_id=subscription.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        subscription = self.get_object()
        queryset = WebhookDelivery.objects.filter(subscription=subscription).order_by("-id")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


def register(router) -> None:
    router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

