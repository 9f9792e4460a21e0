"""Complaints: SLA due dates, the status transitions, replies by e-mail, internal notes,
goodwill points and vouchers through the ledger (once), closing invites to a survey, and the
member's privacy rights (export, erasure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from feedback import services
from feedback.errors import ComplaintStateError, GoodwillAlreadyGranted
from feedback.models import Complaint, ComplaintMessage, Response, Survey, SurveyInvitation
from members.erasure import member_erase
from members.gdpr import member_export_data
from rewards.errors import AdjustmentTooLarge
from rewards.models import PointEntry, Redemption
from tests import factories

BERLIN = ZoneInfo("Europe/Berlin")


def open_complaint(member, category="product", **fields):
    return services.complaint_open(member_id=member.pk, category=category, subject="Kaffee kalt",
                                   description="Der Kaffee war kalt.", channel="portal", **fields)


# --- SLA ---------------------------------------------------------------------------------------

def test_the_due_date_follows_the_sla_of_the_category_or_the_default(member, settings):
    settings.LOYALTY_COMPLAINT_SLA_HOURS = 48
    settings.LOYALTY_COMPLAINT_SLA_HOURS_BY_CATEGORY = {"points": 24, "voucher": 8}
    opened = datetime(2026, 11, 27, 16, 30, tzinfo=BERLIN)
    assert open_complaint(member, "points", now=opened).due_at == opened + timedelta(hours=24)
    assert open_complaint(member, "voucher", now=opened).due_at == opened + timedelta(hours=8)
    assert open_complaint(member, "product", now=opened).due_at == opened + timedelta(hours=48)


def test_a_new_category_moves_the_due_date_from_the_opening(member, settings):
    settings.LOYALTY_COMPLAINT_SLA_HOURS = 48
    settings.LOYALTY_COMPLAINT_SLA_HOURS_BY_CATEGORY = {"points": 24}
    complaint = open_complaint(member, "product")
    complaint = services.complaint_update(complaint_id=complaint.pk, category="points")
    assert complaint.due_at == complaint.created_at + timedelta(hours=24)


def test_overdue_means_open_and_past_the_due_date(member):
    complaint = open_complaint(member, now=timezone.now() - timedelta(days=5))
    assert complaint.is_overdue
    services.complaint_set_status(complaint_id=complaint.pk, status="resolved")
    complaint.refresh_from_db()
    assert not complaint.is_overdue


# --- Status ------------------------------------------------------------------------------------

def test_a_complaint_goes_through_its_states(member):
    staff = factories.StaffUserFactory()
    complaint = open_complaint(member)
    for status in ("in_progress", "waiting", "in_progress", "resolved", "closed"):
        complaint = services.complaint_set_status(complaint_id=complaint.pk, status=status, staff_user=staff)
        assert complaint.status == status
    assert complaint.assignee == staff  # whoever takes it on first
    assert complaint.resolved_at and complaint.closed_at


@pytest.mark.parametrize("status", ["open", "in_progress", "waiting", "resolved"])
def test_a_closed_complaint_is_final(member, status):
    complaint = open_complaint(member)
    services.complaint_set_status(complaint_id=complaint.pk, status="closed")
    with pytest.raises(ComplaintStateError):
        services.complaint_set_status(complaint_id=complaint.pk, status=status)
    with pytest.raises(ComplaintStateError):
        services.complaint_reply(complaint_id=complaint.pk, body="Noch etwas", staff_user=None)


def test_an_open_complaint_cannot_go_back_to_open_from_resolved(member):
    complaint = open_complaint(member)
    services.complaint_set_status(complaint_id=complaint.pk, status="resolved")
    with pytest.raises(ComplaintStateError):
        services.complaint_set_status(complaint_id=complaint.pk, status="open")


def test_the_member_writing_back_puts_it_in_progress_again(member):
    complaint = open_complaint(member)
    services.complaint_set_status(complaint_id=complaint.pk, status="waiting")
    services.complaint_member_message(complaint_id=complaint.pk, member_id=member.pk, body="Hier das Foto.")
    complaint.refresh_from_db()
    assert complaint.status == "in_progress"


# --- Replies and notes -------------------------------------------------------------------------

def test_a_reply_is_e_mailed_to_the_member_once(tiers, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    member = factories.enrolled_member(first_name="Paula", language="en")
    complaint = open_complaint(member)
    staff = factories.StaffUserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        message = services.complaint_reply(complaint_id=complaint.pk, body="Wir schicken Ersatz.",
                                           staff_user=staff)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [member.email]
    assert complaint.number in email.subject and "Wir schicken Ersatz." in email.body
    assert "Hello Paula," in email.body
    assert not services.complaint_reply_send(message_id=message.pk)  # a redelivered task sends nothing
    assert len(mail.outbox) == 1
    complaint.refresh_from_db()
    assert complaint.status == "in_progress"


def test_internal_notes_are_never_shown_to_the_member(member):
    from feedback.selectors import messages_for_member

    complaint = open_complaint(member)
    services.complaint_note(complaint_id=complaint.pk, body="Kunde ist Stammkunde", staff_user=None)
    services.complaint_reply(complaint_id=complaint.pk, body="Danke für Ihre Geduld", staff_user=None)
    assert [message.kind for message in messages_for_member(complaint)] == ["reply"]
    exported = member_export_data(member)["feedback"]
    assert "Kunde ist Stammkunde" not in str(exported) and "Danke für Ihre Geduld" in str(exported)


# --- Goodwill ----------------------------------------------------------------------------------

def test_goodwill_points_go_through_the_ledger_once(member):
    complaint = open_complaint(member)
    staff = factories.StaffUserFactory()
    entry = services.complaint_goodwill_points(complaint_id=complaint.pk, points=200, staff_user=staff)
    assert (entry.source, entry.reference, entry.points, entry.created_by) == (
        "complaint", f"complaint:{complaint.pk}", 200, staff)
    with pytest.raises(GoodwillAlreadyGranted):
        services.complaint_goodwill_points(complaint_id=complaint.pk, points=200, staff_user=staff)
    member.refresh_from_db()
    assert member.points_balance == 200 == PointEntry.objects.get(member=member).points
    complaint.refresh_from_db()
    assert complaint.goodwill_points == 200


def test_goodwill_above_the_support_limit_needs_an_administrator(member, settings):
    settings.LOYALTY_SUPPORT_ADJUST_LIMIT = 500
    complaint = open_complaint(member)
    with pytest.raises(AdjustmentTooLarge):
        services.complaint_goodwill_points(complaint_id=complaint.pk, points=501,
                                           staff_user=factories.StaffUserFactory())
    admin = factories.UserFactory(is_staff=True, is_superuser=True)
    services.complaint_goodwill_points(complaint_id=complaint.pk, points=501, staff_user=admin)


def test_a_goodwill_voucher_costs_no_points_and_is_given_once(member):
    reward = factories.RewardFactory(points_cost=500)
    complaint = open_complaint(member)
    voucher = services.complaint_goodwill_voucher(complaint_id=complaint.pk, reward_id=reward.pk)
    assert (voucher.source, voucher.points, voucher.member) == (Redemption.Source.GOODWILL, 0, member)
    with pytest.raises(GoodwillAlreadyGranted):
        services.complaint_goodwill_voucher(complaint_id=complaint.pk, reward_id=reward.pk)
    assert Redemption.objects.count() == 1
    assert not PointEntry.objects.exists()


# --- Closing the loop --------------------------------------------------------------------------

def test_closing_a_complaint_invites_the_member_to_the_after_complaint_survey(member,
                                                                               django_capture_on_commit_callbacks,
                                                                               monkeypatch):
    monkeypatch.setattr(services, "enqueue", lambda *args, **kwargs: None)
    survey = factories.SurveyFactory(kind="csat", trigger=Survey.Trigger.COMPLAINT_CLOSED,
                                     question_de="Wie zufrieden sind Sie mit der Lösung?")
    complaint = open_complaint(member)
    with django_capture_on_commit_callbacks(execute=True):
        services.complaint_set_status(complaint_id=complaint.pk, status="closed")
    invitation = SurveyInvitation.objects.get()
    assert (invitation.survey, invitation.member, invitation.complaint, invitation.reason) == (
        survey, member, complaint, "complaint")


# --- Privacy -----------------------------------------------------------------------------------

def test_the_export_holds_the_members_answers_and_complaints(member):
    survey = factories.SurveyFactory()
    services.response_record(survey_id=survey.pk, member_id=member.pk, score=4, comment="Zu voll", channel="portal")
    complaint = open_complaint(member)
    services.complaint_member_message(complaint_id=complaint.pk, member_id=member.pk, body="Foto anbei")
    other = factories.enrolled_member()
    services.response_record(survey_id=survey.pk, member_id=other.pk, score=10, comment="Fremd", channel="portal")
    exported = member_export_data(member)["feedback"]
    assert [row["type"] for row in exported] == ["survey_response", "complaint"]
    assert exported[0]["score"] == 4 and exported[0]["comment"] == "Zu voll"
    assert exported[1]["number"] == complaint.number and exported[1]["messages"][0]["text"] == "Foto anbei"
    assert "Fremd" not in str(exported)


def test_erasure_blanks_comments_and_complaint_texts_but_keeps_the_scores(member):
    survey = factories.SurveyFactory()
    response = services.response_record(survey_id=survey.pk, member_id=member.pk, score=3,
                                        comment="Herr Müller an der Kasse war unfreundlich", channel="portal")
    complaint = open_complaint(member)
    services.complaint_reply(complaint_id=complaint.pk, body="Liebe Frau Mustermann, ...", staff_user=None)
    services.complaint_note(complaint_id=complaint.pk, body="Ruft oft an, Tel. 0171 ...", staff_user=None)
    other = factories.enrolled_member()
    kept = services.response_record(survey_id=survey.pk, member_id=other.pk, score=9, comment="Alles gut",
                                    channel="portal")
    member_erase(member_id=member.pk)
    response.refresh_from_db()
    complaint.refresh_from_db()
    assert response.comment == "" and response.score == 3
    assert complaint.subject == complaint.description == services.ERASED_TEXT
    assert set(ComplaintMessage.objects.values_list("body", flat=True)) == {services.ERASED_TEXT}
    assert Response.objects.get(pk=kept.pk).comment == "Alles gut"
    assert Complaint.objects.filter(member=member).count() == 1  # the statistics stay


def test_a_merge_moves_answers_complaints_and_invitations_to_the_survivor(member, tiers):
    from members.merge import member_merge

    duplicate = factories.enrolled_member()
    survey = factories.SurveyFactory()
    services.response_record(survey_id=survey.pk, member_id=duplicate.pk, score=7, channel="api")
    complaint = open_complaint(duplicate)
    invitation = factories.SurveyInvitationFactory(member=duplicate)
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    assert Response.objects.get().member == member
    complaint.refresh_from_db()
    invitation.refresh_from_db()
    assert complaint.member == member and invitation.member == member


def test_a_survey_reward_paid_to_a_merged_duplicate_is_not_paid_again_to_the_survivor(member, tiers):
    from members.merge import member_merge

    duplicate = factories.enrolled_member()
    survey = factories.SurveyFactory(reward_points=50)
    services.response_record(survey_id=survey.pk, member_id=duplicate.pk, score=9, channel="api")
    member_merge(survivor_id=member.pk, duplicate_id=duplicate.pk)
    services.response_record(survey_id=survey.pk, member_id=member.pk, score=10, channel="api")
    assert PointEntry.objects.filter(source="survey", points__gt=0).count() == 1
