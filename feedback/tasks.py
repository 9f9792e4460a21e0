"""Celery tasks of the feedback app. They take ids and load fresh rows; a redelivered task
sends nothing twice (feedback.services claims each e-mail by compare-and-set)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="feedback.tasks.invite_after_purchases", ignore_result=True)
def invite_after_purchases() -> int:
    return services.purchase_invitations_create()


@shared_task(name="feedback.tasks.invite_segment", ignore_result=True)
def invite_segment(survey_id: int) -> int:
    return services.segment_invitations_create(survey_id=survey_id)


@shared_task(name="feedback.tasks.send_invitations", ignore_result=True)
def send_invitations(invitation_ids: list[int]) -> int:
    return services.invitations_send(invitation_ids=invitation_ids)


@shared_task(name="feedback.tasks.send_complaint_reply", ignore_result=True)
def send_complaint_reply(message_id: int) -> bool:
    return services.complaint_reply_send(message_id=message_id)
