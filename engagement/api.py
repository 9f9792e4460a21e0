"""Partner API: a member's challenges and badges, read-only, at
/api/v1/members/{member_id}/challenges/ and /api/v1/members/{member_id}/badges/.

The member is reached as everywhere (members.presence): related to the caller, or present by a
query parameter; the scope is the members' read scope, as for the balance.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from members.models import Member
from members.presence import PRESENCE_FIELDS, presence_from, resolve_member
from partners.api.base import UUID_REGEX, PartnerViewSet
from partners.models import Scope

from . import selectors
from .models import Challenge, MemberBadge

MEMBER_PARAMETER = OpenApiParameter("member_pk", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                    description="The member's id (opaque).")
PRESENCE_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, description="Presence: reach a member this partner is not related to.")
    for name in PRESENCE_FIELDS
]


class BadgeSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="badge.pk")
    name = serializers.CharField(source="badge.name")
    description = serializers.CharField(source="badge.description")
    picture = serializers.CharField(source="badge.picture", help_text="One of the shipped pictures.")
    awarded_at = serializers.DateTimeField()


class ChallengeProgressSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="challenge.pk")
    name = serializers.CharField(source="challenge.name")
    goal = serializers.ChoiceField(source="challenge.goal", choices=Challenge.Goal.choices)
    target = serializers.DecimalField(source="challenge.target", max_digits=12, decimal_places=2)
    value = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Progress so far (EUR for spend).")
    percent = serializers.IntegerField(min_value=0, max_value=100)
    ends_at = serializers.DateTimeField(source="challenge.ends_at", allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    rewarded = serializers.BooleanField()


class ChallengesSerializer(serializers.Serializer):
    running = ChallengeProgressSerializer(many=True)
    completed = ChallengeProgressSerializer(many=True)


class _MemberScoped(PartnerViewSet):
    filter_backends = []
    pagination_class = None
    required_scopes = {"list": Scope.MEMBERS_READ}

    def member(self) -> Member:
        return resolve_member(self.principal, public_id=self.kwargs["member_pk"],
                              presence=presence_from(self.request.query_params))


class MemberChallengeViewSet(_MemberScoped):
    """A member's running challenges (with progress) and completed ones."""

    @extend_schema(summary="A member's challenges: running ones with progress, and completed ones",
                   parameters=[MEMBER_PARAMETER, *PRESENCE_PARAMETERS], responses=ChallengesSerializer)
    def list(self, request, member_pk=None):
        running, completed = selectors.member_challenges(self.member())
        return Response(ChallengesSerializer({"running": running, "completed": completed}).data)


class MemberBadgeViewSet(_MemberScoped):
    queryset = MemberBadge.objects.none()

    @extend_schema(summary="A member's badges, newest first", parameters=[MEMBER_PARAMETER, *PRESENCE_PARAMETERS],
                   responses=BadgeSerializer(many=True))
    def list(self, request, member_pk=None):
        return Response(BadgeSerializer(selectors.member_badges(self.member()), many=True).data)


def register(router) -> None:
    router.register(rf"members/(?P<member_pk>{UUID_REGEX})/challenges", MemberChallengeViewSet,
                    basename="member-challenge")
    router.register(rf"members/(?P<member_pk>{UUID_REGEX})/badges", MemberBadgeViewSet, basename="member-badge")
