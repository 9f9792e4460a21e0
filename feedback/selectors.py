"""Reads of the feedback app that the portal, the export and the admin share."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from members.models import Member

from .models import Complaint, ComplaintMessage, Response, SurveyInvitation


def open_invitations_of(member: Member) -> QuerySet[SurveyInvitation]:
    return (SurveyInvitation.objects.filter(member=member, answered_at__isnull=True, expires_at__gt=timezone.now(),
                                            survey__active=True)
            .select_related("survey").order_by("expires_at", "pk"))


def complaints_of(member: Member) -> QuerySet[Complaint]:
    return Complaint.objects.filter(member=member).order_by("-created_at", "-id")


def messages_for_member(complaint: Complaint) -> QuerySet[ComplaintMessage]:
    """What the member may read: their own messages and the replies, never internal notes."""
    return complaint.messages.exclude(kind=ComplaintMessage.Kind.NOTE).order_by("created_at", "id")


def feedback_export(member_ids: list[int]) -> list[dict]:
    """Art. 15/20 DSGVO: the member's answers and complaints (without internal notes)."""
    responses = [
        {"type": "survey_response", "survey": response.survey.question, "kind": response.survey.kind,
         "score": response.score, "comment": response.comment, "channel": response.channel,
         "store": response.store.name if response.store else None, "created_at": response.created_at}
        for response in Response.objects.filter(member_id__in=member_ids).select_related("survey", "store")
        .order_by("created_at", "id")
    ]
    member_messages = Prefetch("messages", queryset=ComplaintMessage.objects.exclude(
        kind=ComplaintMessage.Kind.NOTE).order_by("created_at", "id"))
    complaints = [
        {"type": "complaint", "number": complaint.number, "category": complaint.category,
         "subject": complaint.subject, "description": complaint.description, "status": complaint.status,
         "channel": complaint.channel, "created_at": complaint.created_at, "resolved_at": complaint.resolved_at,
         "closed_at": complaint.closed_at, "goodwill_points": complaint.goodwill_points,
         "messages": [{"kind": message.kind, "text": message.body, "created_at": message.created_at}
                      for message in complaint.messages.all()]}
        for complaint in Complaint.objects.filter(member_id__in=member_ids).prefetch_related(member_messages)
        .order_by("created_at", "id")
    ]
    return responses + complaints
