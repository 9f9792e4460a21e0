"""Partner API for feedback: the surveys a till's tablet shows, its answers, and complaints.

Thin, as everywhere in the API: a serializer validates, a service in feedback.services does
the work, a serializer shows the result. An answer may name a member (then the survey's points
are paid, once per member and survey) or be anonymous. A named member must be present or
related (members.presence). A partner reads only the complaints it opened (a key
restricted to stores: those of its stores): anything else is a 404.
"""

from __future__ import annotations

from django.db.models import F
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response as ApiResponse

from members.presence import MemberIdField, MemberReferenceSerializer
from partners.api.base import MAX_ID, PartnerViewSet, StrictFieldsMixin, store_for
from partners.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from partners.models import Scope

from . import services
from .forms import COMMENT_MAX
from .models import Complaint, Response, Survey

# --- Serializers ---------------------------------------------------------------------------------


class SurveySerializer(serializers.ModelSerializer):
    question = serializers.CharField(read_only=True, help_text="In the language of the request.")
    follow_up = serializers.CharField(read_only=True, help_text="Optional free-text question; may be empty.")
    min_score = serializers.SerializerMethodField()
    max_score = serializers.SerializerMethodField()

    class Meta:
        model = Survey
        fields = ["id", "kind", "question", "follow_up", "min_score", "max_score", "reward_points"]
        read_only_fields = fields

    def get_min_score(self, survey) -> int:
        return survey.scale[0]

    def get_max_score(self, survey) -> int:
        return survey.scale[1]


class OptionalMemberSerializer(MemberReferenceSerializer):
    """A member named by at most one of id, card number, customer number or member code; none: anonymous."""

    member_optional = True


class ResponseCreateSerializer(StrictFieldsMixin, OptionalMemberSerializer):
    survey_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="An active survey (GET /surveys/).")
    score = serializers.IntegerField(min_value=-1000, max_value=1000,
                                     help_text="Within the survey's min_score and max_score.")

    def validate_survey_id(self, value):
        survey = Survey.objects.filter(pk=value, active=True).first()
        if survey is None:
            raise serializers.ValidationError(_("No active survey with this id."))
        return survey
    comment = serializers.CharField(max_length=COMMENT_MAX, required=False, allow_blank=True, default="")
    store = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="The store's code.")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        attrs["store"] = store_for(self.context["principal"], attrs.get("store"))
        return attrs


class ResponseSerializer(serializers.ModelSerializer):
    survey_id = serializers.IntegerField(read_only=True)
    member_id = MemberIdField(allow_null=True)
    store = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Response
        fields = ["id", "survey_id", "member_id", "score", "comment", "store", "created_at"]
        read_only_fields = fields


class ComplaintCreateSerializer(StrictFieldsMixin, MemberReferenceSerializer):
    category = serializers.ChoiceField(choices=Complaint.Category.choices)
    subject = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=COMMENT_MAX)
    store = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="The store's code.")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        attrs["store"] = store_for(self.context["principal"], attrs.get("store"))
        return attrs


class ComplaintSerializer(serializers.ModelSerializer):
    member_id = MemberIdField()
    store = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Complaint
        fields = ["id", "number", "member_id", "category", "subject", "description", "status", "store", "due_at",
                  "created_at", "resolved_at", "closed_at"]
        read_only_fields = fields


# --- Viewsets ------------------------------------------------------------------------------------

class SurveyViewSet(PartnerViewSet):
    """Active surveys, for a tablet to show."""

    serializer_class = SurveySerializer
    required_scopes = {"list": Scope.FEEDBACK_READ, "retrieve": Scope.FEEDBACK_READ}

    def get_queryset(self):
        return Survey.objects.filter(active=True).order_by("pk")

    @extend_schema(summary="List active surveys")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SurveySerializer(page, many=True).data)

    @extend_schema(summary="Read a survey")
    def retrieve(self, request, pk=None):
        return ApiResponse(SurveySerializer(self.get_object()).data)


class SurveyResponseViewSet(PartnerViewSet):
    """Answers given at a till's tablet (or any partner channel)."""

    serializer_class = ResponseSerializer
    required_scopes = {"create": Scope.FEEDBACK_WRITE}

    def get_queryset(self):
        return Response.objects.none()

    @extend_schema(summary="Post a survey answer", request=ResponseCreateSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: ResponseSerializer},
                   description="Name the member by one of member_id (a member related to the partner), "
                               "card_number, customer_number or member_code (presence), or by none for an "
                               "anonymous answer. A member's first answer to a survey earns its points.")
    @idempotent
    def create(self, request):
        serializer = ResponseCreateSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        member = data["member"]
        response = services.response_record(
            survey_id=data["survey_id"].pk, score=data["score"], comment=data["comment"],
            channel=Response.Channel.API, member_id=member.pk if member else None, store=data["store"],
            partner=self.partner, language=(request.LANGUAGE_CODE or "")[:2])
        return ApiResponse(ResponseSerializer(response).data, status=status.HTTP_201_CREATED)


class ComplaintViewSet(PartnerViewSet):
    """Complaints the calling partner opened (a key restricted to stores: at its stores)."""

    serializer_class = ComplaintSerializer
    required_scopes = {"list": Scope.FEEDBACK_READ, "retrieve": Scope.FEEDBACK_READ, "create": Scope.FEEDBACK_WRITE}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Complaint.objects.none()
        queryset = self.principal.within_stores(Complaint.objects.filter(partner=self.partner))
        return (queryset.select_related("store").annotate(member_public_id=F("member__public_id"))
                .order_by("-id"))

    @extend_schema(summary="List the complaints the partner opened")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ComplaintSerializer(page, many=True).data)

    @extend_schema(summary="Read a complaint (its status)")
    def retrieve(self, request, pk=None):
        return ApiResponse(ComplaintSerializer(self.get_object()).data)

    @extend_schema(summary="Open a complaint for a member", request=ComplaintCreateSerializer,
                   description="Name the member by member_id (a member related to the partner) or by "
                               "card_number, customer_number or member_code (presence).",
                   parameters=[IDEMPOTENCY_PARAMETER], responses={201: ComplaintSerializer})
    @idempotent
    def create(self, request):
        serializer = ComplaintCreateSerializer(data=request.data, context={"principal": self.principal})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        complaint = services.complaint_open(
            member_id=data["member"].pk, category=data["category"], subject=data["subject"],
            description=data["description"], channel=Complaint.Channel.API, store=data["store"], partner=self.partner)
        return ApiResponse(ComplaintSerializer(complaint).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("surveys", SurveyViewSet, basename="survey")
    router.register("survey-responses", SurveyResponseViewSet, basename="survey-response")
    router.register("complaints", ComplaintViewSet, basename="complaint")

