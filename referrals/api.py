"""Partner API for referrals: attach a referral code to a member (a till right after enrolment),
read a member's referrals and their own referral code.

Mounted under the member: /api/v1/members/{member_id}/referrals/ (the member's opaque id, reached
as members.presence says: related, or present by a query parameter). Thin, as
everywhere in the API: a serializer validates, `referrals.services` changes, a serializer shows.
The scopes are the members' ones: referrals are part of a member's record."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.public import public_url
from members.models import Member
from members.presence import PRESENCE_FIELDS, presence_from, resolve_member
from partners.api.base import UUID_REGEX, PartnerViewSet, StrictFieldsMixin
from partners.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from partners.models import Scope

from . import services
from .models import Referral

MEMBER_PARAMETER = OpenApiParameter("member_pk", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                    description="The member's id (opaque).")
PRESENCE_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, description="Presence: reach a member this partner is not related to.")
    for name in PRESENCE_FIELDS
]


class ReferralSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The member's side: referrer or referee.")
    friend = serializers.SerializerMethodField(help_text="The other side's first name and initial.")
    points = serializers.SerializerMethodField(help_text="Points this referral paid the member.")
    in_review = serializers.SerializerMethodField(help_text="Waiting for a staff review before it is paid.")

    referrer_id = serializers.UUIDField(source="referrer.public_id", read_only=True)
    referee_id = serializers.UUIDField(source="referee.public_id", read_only=True)

    class Meta:
        model = Referral
        fields = ["id", "role", "referrer_id", "referee_id", "friend", "status", "channel", "in_review", "points",
                  "started_at", "created_at", "qualified_at", "payable_at", "rewarded_at", "rejected_at",
                  "expired_at"]
        read_only_fields = fields

    def _is_referrer(self, referral) -> bool:
        return referral.referrer_id == self.context["member"].pk

    @extend_schema_field(serializers.ChoiceField(choices=["referrer", "referee"]))
    def get_role(self, referral) -> str:
        return "referrer" if self._is_referrer(referral) else "referee"

    @extend_schema_field(OpenApiTypes.STR)
    def get_friend(self, referral) -> str:
        return services.short_name(referral.referee if self._is_referrer(referral) else referral.referrer)

    @extend_schema_field(OpenApiTypes.INT)
    def get_points(self, referral) -> int:
        return referral.referrer_points if self._is_referrer(referral) else referral.referee_points

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_in_review(self, referral) -> bool:
        return referral.flagged


class ReferralAttachSerializer(StrictFieldsMixin, serializers.Serializer):
    code = serializers.CharField(max_length=20, help_text="The referrer's code, as printed or typed; spaces, "
                                 "dashes and lower case are fine.")


class ReferralCodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    share_url = serializers.CharField()


class MemberReferralViewSet(PartnerViewSet):
    """A member's referrals, both as referrer and as the referred friend."""

    serializer_class = ReferralSerializer
    filter_backends = []
    required_scopes = {"list": Scope.MEMBERS_READ, "code": Scope.MEMBERS_READ, "create": Scope.MEMBERS_WRITE}

    def member(self) -> Member:
        if not hasattr(self, "_member"):
            self._member = resolve_member(self.principal, public_id=self.kwargs["member_pk"],
                                          presence=presence_from(self.request.query_params))
        return self._member

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Referral.objects.none()
        member_pk = self.member().pk
        return (Referral.objects.filter(Q(referrer_id=member_pk) | Q(referee_id=member_pk))
                .select_related("referrer", "referee").order_by("-id"))

    @extend_schema(summary="A member's referrals, newest first", parameters=[MEMBER_PARAMETER, *PRESENCE_PARAMETERS])
    def list(self, request, member_pk=None):
        member = self.member()
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ReferralSerializer(page, many=True, context={"member": member}).data)

    @extend_schema(summary="Attach a referral code to a member (the member is the referred friend)",
                   description="Send it right after enrolling the member. A member is referred once; the same "
                               "code again answers with the first referral.",
                   request=ReferralAttachSerializer,
                   parameters=[MEMBER_PARAMETER, IDEMPOTENCY_PARAMETER, *PRESENCE_PARAMETERS],
                   responses={201: ReferralSerializer})
    @idempotent
    def create(self, request, member_pk=None):
        member = self.member()
        serializer = ReferralAttachSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        referral = services.referral_attach(referee_id=member.pk, code=serializer.validated_data["code"],
                                            channel=Referral.Channel.API)
        referral = self.get_queryset().get(pk=referral.pk)
        return Response(ReferralSerializer(referral, context={"member": member}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(summary="The member's own referral code and share link",
                   parameters=[MEMBER_PARAMETER, *PRESENCE_PARAMETERS],
                   responses=ReferralCodeSerializer)
    @action(detail=False, methods=["get"])
    def code(self, request, member_pk=None):
        from django.urls import reverse
        from django.utils import translation

        member = self.member()
        code = services.referral_code_for(member)
        with translation.override("de"):
            path = reverse("referrals:share", args=[code])
        return Response(ReferralCodeSerializer({"code": code,
                                                "share_url": public_url(path)}).data)


def register(router) -> None:
    router.register(rf"members/(?P<member_pk>{UUID_REGEX})/referrals", MemberReferralViewSet,
                    basename="member-referral")
