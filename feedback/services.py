"""Feedback services: every state change of surveys, answers, follow-ups and complaints.

- Lock order, as in the ledger: the member row first (`rewards.ledger.member_lock`), then the
  invitation or the complaint. An answer locks its member before anything else, so two answers
  of one member (two tabs, the e-mail link and the portal, two tablets) run one after the
  other: the second sees the first one's points and the reward is paid once. The ledger's
  unique (source, reference) = ("survey", "survey:<survey>:<member>") is the backstop.
- An invitation is used once: `answered_at` is set by compare-and-set
  (`filter(answered_at=None, expires_at__gt=now).update(...)`), and `Response.invitation` is unique.
- Invitations after purchases are made set-based by a daily job: one query finds the members
  who bought on the day N days ago and were not invited in the throttle window, a stable hash
  of (survey, purchase) samples them (a rerun picks the same ones), one bulk insert writes them
  (the unique (survey, purchase) makes a rerun a no-op), and the e-mails go out in batches of
  Celery tasks. The set-based jobs do not lock members: in the rare case that a per-member
  invitation (after a complaint) runs at the same moment, a member may be asked twice; the
  throttle is a courtesy, not an invariant.
- E-mails (invitations, replies to complaints) are sent by tasks queued after the commit. A
  survey e-mail needs the member's e-mail consent (German law treats a satisfaction survey by
  e-mail as advertising); without it the invitation still waits in the portal.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from campaigns.sending import members_over_cap
from core.events import publish
from core.public import public_url
from core.stored_texts import both_languages, stored_text
from core.tasks import enqueue
from members.errors import MemberNotActive
from members.models import Member
from rewards.adjustments import GOODWILL_SOURCE, staff_points_limits_check
from rewards.ledger import member_lock, points_credit
from rewards.models import PointEntry, Purchase, Redemption

from .errors import (
    AssigneeNotStaff,
    ComplaintStateError,
    GoodwillAlreadyGranted,
    InvalidScore,
    InvalidSurveyLink,
    InvitationUsed,
    SurveyClosed,
)
from .events import ComplaintClosed, SurveyAnswered
from .models import Complaint, ComplaintMessage, FollowUp, Response, Survey, SurveyInvitation

SURVEY_SOURCE = "survey"
# GOODWILL_SOURCE (rewards.adjustments): support's daily limit counts complaint goodwill by it.

SEND_BATCH_SIZE = 200
BULK_SIZE = 2000


def survey_reward_reference(survey_id: int, member_id: int) -> str:
    return f"survey:{survey_id}:{member_id}"


# --- Invitations ---------------------------------------------------------------------------------

def _throttle_start(now: datetime) -> datetime:
    return now - timedelta(days=settings.LOYALTY_SURVEY_THROTTLE_DAYS)


def recently_invited(now: datetime) -> QuerySet:
    """Member ids invited to any survey within the throttle window (a subquery)."""
    return SurveyInvitation.objects.filter(created_at__gt=_throttle_start(now)).values("member_id")


def _expiry(now: datetime) -> datetime:
    return now + timedelta(days=settings.LOYALTY_SURVEY_LINK_DAYS)


@transaction.atomic
def survey_invite(*, survey_id: int, member_id: int, reason: str = SurveyInvitation.Reason.MANUAL,
                  purchase_id: int | None = None, complaint_id: int | None = None,
                  now: datetime | None = None) -> SurveyInvitation | None:
    """Invite one member, unless they are not active or were invited within the throttle window
    (None then). The member row is locked: two invitations for one member don't both pass."""
    now = now or timezone.now()
    member = member_lock(member_id)
    survey = Survey.objects.get(pk=survey_id)
    if not survey.active or member.status != Member.Status.ACTIVE:
        return None
    if SurveyInvitation.objects.filter(member_id=member.pk, created_at__gt=_throttle_start(now)).exists():
        return None
    if complaint_id and SurveyInvitation.objects.filter(survey=survey, complaint_id=complaint_id).exists():
        return None
    invitation = SurveyInvitation.objects.create(
        survey=survey, member=member, reason=reason, purchase_id=purchase_id, complaint_id=complaint_id,
        created_at=now, expires_at=_expiry(now))
    _queue_sending([invitation.pk])
    return invitation


def _queue_sending(invitation_ids: list[int]) -> None:
    from . import tasks

    for start in range(0, len(invitation_ids), SEND_BATCH_SIZE):
        enqueue(tasks.send_invitations, invitation_ids[start:start + SEND_BATCH_SIZE])


def _sampled(survey: Survey, purchase_id: int) -> bool:
    """A stable draw: the same (survey, purchase) always gets the same answer, so a rerun of
    the job neither adds nor drops anybody."""
    digest = hashlib.sha256(f"{survey.pk}:{purchase_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < survey.sample_percent


def _local_day_bounds(day) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


@transaction.atomic
def purchase_invitations_create(*, now: datetime | None = None) -> int:
    """The daily job: invite a sample of the members who bought `delay_days` ago, for each
    active survey triggered by purchases. Returns how many invitations were made."""
    now = now or timezone.now()
    made: list[int] = []
    for survey in Survey.objects.filter(active=True, trigger=Survey.Trigger.PURCHASE):
        start, end = _local_day_bounds(timezone.localdate(now) - timedelta(days=survey.delay_days))
        # One row per member (their latest purchase of that day), in one grouped query.
        rows = (Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end,
                                        member__status=Member.Status.ACTIVE)
                .exclude(member_id__in=recently_invited(now))
                .values("member_id").annotate(last=Max("pk")).order_by("member_id")
                .values_list("last", "member_id"))
        chosen = [(purchase_id, member_id) for purchase_id, member_id in rows.iterator(chunk_size=BULK_SIZE)
                  if _sampled(survey, purchase_id)]
        SurveyInvitation.objects.bulk_create(
            [SurveyInvitation(survey=survey, member_id=member_id, purchase_id=purchase_id,
                              reason=SurveyInvitation.Reason.PURCHASE, created_at=now, expires_at=_expiry(now))
             for purchase_id, member_id in chosen],
            batch_size=BULK_SIZE, ignore_conflicts=True)
        made += list(SurveyInvitation.objects.filter(
            survey=survey, purchase_id__in=[purchase_id for purchase_id, _member in chosen], created_at=now,
            sent_at__isnull=True).values_list("pk", flat=True))
    _queue_sending(made)
    return len(made)


@transaction.atomic
def segment_invitations_create(*, survey_id: int, now: datetime | None = None) -> int:
    """Invite the members of the survey's segment (all active members without one) who were
    not invited within the throttle window, set-based."""
    from campaigns.segments import segment_queryset

    now = now or timezone.now()
    survey = Survey.objects.select_related("segment").get(pk=survey_id)
    if not survey.active:
        raise SurveyClosed()
    member_ids = (segment_queryset(survey.segment, now=now).exclude(pk__in=recently_invited(now))
                  .order_by("pk").values_list("pk", flat=True))
    ids: list[int] = []
    batch: list[SurveyInvitation] = []
    for member_id in member_ids.iterator(chunk_size=BULK_SIZE):
        batch.append(SurveyInvitation(survey=survey, member_id=member_id, reason=SurveyInvitation.Reason.SEGMENT,
                                      created_at=now, expires_at=_expiry(now)))
        if len(batch) >= BULK_SIZE:
            ids += [row.pk for row in SurveyInvitation.objects.bulk_create(batch)]
            batch = []
    if batch:
        ids += [row.pk for row in SurveyInvitation.objects.bulk_create(batch)]
    _queue_sending(ids)
    return len(ids)


def invitations_send(*, invitation_ids: Iterable[int], now: datetime | None = None, connection=None) -> int:
    """E-mail the invitations (a Celery task's body). Each is claimed by compare-and-set on
    `sent_at` before its e-mail leaves, so a redelivered task sends nothing twice (a crash
    between the claim and the send loses that one e-mail: a survey can live with that)."""
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.template.loader import render_to_string

    from members.services import consent_given

    from . import links

    now = now or timezone.now()
    sent = 0
    rows = (SurveyInvitation.objects.filter(pk__in=list(invitation_ids), sent_at__isnull=True, answered_at__isnull=True,
                                            expires_at__gt=now).select_related("survey", "member"))
    rows = list(rows)
    # Survey mails share the marketing frequency cap with campaigns (and count toward it: see
    # survey_contacts): a member at the cap is not asked this time.
    capped = members_over_cap({invitation.member_id for invitation in rows}, now=now)
    messages = []
    for invitation in rows:
        member = invitation.member
        if member.status != Member.Status.ACTIVE or not member.email or not consent_given(member, "email"):
            continue
        if member.pk in capped:
            continue
        if not SurveyInvitation.objects.filter(pk=invitation.pk, sent_at__isnull=True).update(sent_at=now):
            continue
        with translation.override(member.language or settings.LANGUAGE_CODE):
            unsubscribe = links.unsubscribe_url(invitation.pk)
            context = {"member": member, "survey": invitation.survey, "invitation": invitation,
                       "links": [(score, links.answer_url(invitation.pk, score)) for score in invitation.survey.scores],
                       "portal_url": public_url("/konto/feedback/"), "unsubscribe_url": unsubscribe}
            email = EmailMultiAlternatives(
                subject=_("A quick question: %(question)s") % {"question": invitation.survey.question},
                body=render_to_string("emails/survey_invitation.txt", context), to=[member.email],
                # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs here.
                headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
            email.attach_alternative(render_to_string("emails/survey_invitation.html", context), "text/html")
        messages.append(email)
    if messages:
        connection = connection or get_connection()
        sent = connection.send_messages(messages) or 0
    return sent


# --- Answers -------------------------------------------------------------------------------------

@transaction.atomic
def survey_unsubscribe(*, invitation_id: int, ip_address: str | None = None) -> Member:
    """The member followed the unsubscribe link of a survey e-mail: withdraw the e-mail consent
    (an append-only record, source "unsubscribe"). Repeating it changes nothing."""
    from members.models import ConsentRecord
    from members.services import consent_current, consent_record

    member = member_lock(SurveyInvitation.objects.values_list("member_id", flat=True).get(pk=invitation_id))
    current = consent_current(member)[ConsentRecord.Purpose.EMAIL]
    if current is None or current.granted:
        consent_record(member=member, purpose=ConsentRecord.Purpose.EMAIL, granted=False,
                       source=ConsentRecord.Source.UNSUBSCRIBE, ip_address=ip_address,
                       text_version=f"survey-invitation:{invitation_id}")
    return member


def survey_contacts(member_ids: Iterable[int], since: datetime) -> Counter:
    """Survey e-mails sent to each member since `since`: contacts under the shared frequency cap
    (registered with campaigns.sending.contact_counters in FeedbackConfig.ready)."""
    rows = (SurveyInvitation.objects.filter(member_id__in=list(member_ids), sent_at__gte=since)
            .order_by().values("member_id").annotate(n=Count("pk")).values_list("member_id", "n"))
    return Counter(dict(rows))


def score_validate(survey: Survey, score: int) -> None:
    low, high = survey.scale
    if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
        raise InvalidScore(low=low, high=high)


def needs_follow_up(kind: str, score: int) -> bool:
    """NPS detractors (0-6) and unhappy CSAT answers (1-2) are called back."""
    return (kind == Survey.Kind.NPS and score <= 6) or (kind == Survey.Kind.CSAT and score <= 2)


@transaction.atomic
def response_record(*, survey_id: int, score: int, comment: str = "", channel: str,
                    member_id: int | None = None, invitation_id: int | None = None, store=None, partner=None,
                    language: str = "", now: datetime | None = None) -> Response:
    """Store an answer: from an invitation (e-mail link or portal), a member at a tablet, or
    anonymously. Pays the survey's points once per member and survey, and opens a follow-up
    for a detractor."""
    now = now or timezone.now()
    if invitation_id is not None:
        invited = SurveyInvitation.objects.filter(pk=invitation_id).values_list("member_id", "survey_id").first()
        if invited is None or invited[1] != survey_id or (member_id is not None and member_id != invited[0]):
            raise InvalidSurveyLink()
        member_id = invited[0]
    member = member_lock(member_id) if member_id is not None else None
    survey = Survey.objects.get(pk=survey_id)
    if not survey.active:
        raise SurveyClosed()
    score_validate(survey, score)
    # Compare-and-set: of two answers to one invitation, the second changes no row.
    if invitation_id is not None and not SurveyInvitation.objects.filter(
            pk=invitation_id, answered_at__isnull=True, expires_at__gt=now).update(answered_at=now):
        raise InvitationUsed()
    response = Response.objects.create(
        survey=survey, invitation_id=invitation_id, member=member, score=score, comment=comment.strip(),
        channel=channel, store=store, partner=partner, tier_id=member.tier_id if member else None,
        language=(language or (member.language if member else ""))[:2], created_at=now)
    if member is not None and survey.reward_points and member.status == Member.Status.ACTIVE:
        reference = survey_reward_reference(survey.pk, member.pk)
        # Under the member lock: a second answer of the same member sees the first one's entry.
        # Duplicates merged into this member are the same person: their reward counts too.
        people = [member.pk, *Member.objects.filter(merged_into_id=member.pk).values_list("pk", flat=True)]
        paid = [survey_reward_reference(survey.pk, person) for person in people]
        if not PointEntry.objects.filter(source=SURVEY_SOURCE, reference__in=paid).exists():
            points_credit(member_id=member.pk, points=survey.reward_points, kind=PointEntry.Kind.BONUS,
                          reason=stored_text("survey-thanks", survey=both_languages(survey, "question")),
                          source=SURVEY_SOURCE, reference=reference)
    if needs_follow_up(survey.kind, score):
        FollowUp.objects.create(response=response, created_at=now,
                                due_at=now + timedelta(days=settings.LOYALTY_FOLLOW_UP_DUE_DAYS))
    publish(SurveyAnswered(member_id=member.pk if member is not None else None,
                           partner_id=_partner_of(partner, store), survey_id=survey.pk, response_id=response.pk,
                           score=score))
    return response


def response_change_until(response: Response) -> datetime:
    """Until when the member may change an answer given through their invitation."""
    return response.created_at + timedelta(days=settings.LOYALTY_SURVEY_CHANGE_DAYS)


def response_changeable(response: Response, now: datetime | None = None) -> bool:
    return response.invitation_id is not None and (now or timezone.now()) < response_change_until(response)


@transaction.atomic
def response_change(*, invitation_id: int, score: int, comment: str | None = None,
                    now: datetime | None = None) -> Response:
    """The member changes the answer they gave through their invitation (the e-mail link's page
    stores the clicked score at once, so a changed mind must still count), within
    LOYALTY_SURVEY_CHANGE_DAYS of the first answer. The row is updated in place, so the metrics
    count the latest score once; the reward and the SurveyAnswered event (keyed by the
    response) stay those of the first answer. The follow-up task follows the answer: opened
    (or reopened) when it becomes unhappy, cancelled with a note when it stops being one.
    `comment` None keeps the comment given before."""
    now = now or timezone.now()
    member_id = SurveyInvitation.objects.filter(pk=invitation_id).values_list("member_id", flat=True).first()
    if member_id is None:
        raise InvalidSurveyLink()
    member_lock(member_id)  # the lock order of every answer: the member first
    response = (Response.objects.select_for_update(of=("self",)).select_related("survey")
                .filter(invitation_id=invitation_id).first())
    if response is None or not response_changeable(response, now):
        raise InvitationUsed()
    survey = response.survey
    if not survey.active:
        raise SurveyClosed()
    score_validate(survey, score)
    was_unhappy = needs_follow_up(survey.kind, response.score)
    response.score = score
    if comment is not None:
        response.comment = comment.strip()
    response.changed_at = now
    response.save(update_fields=["score", "comment", "changed_at"])
    _follow_up_after_change(response, was_unhappy=was_unhappy, now=now)
    return response


def _follow_up_after_change(response: Response, *, was_unhappy: bool, now: datetime) -> None:
    """Keep the follow-up task in step with a changed answer. A task support has done stays
    done; one that was cancelled is reopened rather than duplicated (one task per response)."""
    unhappy = needs_follow_up(response.survey.kind, response.score)
    if unhappy == was_unhappy:
        return
    follow_up = FollowUp.objects.select_for_update().filter(response=response).first()
    due_at = now + timedelta(days=settings.LOYALTY_FOLLOW_UP_DUE_DAYS)
    with translation.override(settings.LANGUAGE_CODE):  # notes are read by staff in the console
        if unhappy and follow_up is None:
            FollowUp.objects.create(response=response, created_at=now, due_at=due_at)
        elif unhappy and follow_up.status == FollowUp.Status.CANCELLED:
            note = _("Reopened: the member changed the answer to %(score)s.") % {"score": response.score}
            FollowUp.objects.filter(pk=follow_up.pk).update(
                status=FollowUp.Status.OPEN, done_at=None, done_by=None, due_at=due_at,
                note=_with_line(follow_up.note, note))
        elif not unhappy and follow_up is not None and follow_up.status == FollowUp.Status.OPEN:
            note = _("Cancelled: the member changed the answer to %(score)s, no call needed.") % {
                "score": response.score}
            FollowUp.objects.filter(pk=follow_up.pk, status=FollowUp.Status.OPEN).update(
                status=FollowUp.Status.CANCELLED, done_at=now, done_by=None, note=_with_line(follow_up.note, note))


def _with_line(text: str, line: str) -> str:
    return f"{text}\n{line}" if text else line


def _partner_of(partner, store) -> int | None:
    """The partner an answer belongs to: the one whose API it came through, else the one of its
    store (its event is announced to that partner only)."""
    if partner is not None:
        return partner.pk
    return store.partner_id if store is not None else None


@transaction.atomic
def follow_up_assign(*, follow_up_id: int, assignee: AbstractBaseUser | None) -> FollowUp:
    """Give the follow-up to a member of staff (None: to nobody); customers and former staff are refused."""
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise AssigneeNotStaff()
    FollowUp.objects.filter(pk=follow_up_id).update(assignee=assignee)
    return FollowUp.objects.get(pk=follow_up_id)


@transaction.atomic
def follow_up_complete(*, follow_up_id: int, staff_user: AbstractBaseUser | None, note: str = "",
                       now: datetime | None = None) -> bool:
    """Mark a follow-up done (compare-and-set: False if it already was)."""
    now = now or timezone.now()
    fields = {"status": FollowUp.Status.DONE, "done_at": now, "done_by": staff_user}
    if note:
        fields["note"] = note
    return bool(FollowUp.objects.filter(pk=follow_up_id, status=FollowUp.Status.OPEN).update(**fields))


# --- Complaints ----------------------------------------------------------------------------------

# The allowed status changes, in one place. A resolved complaint can be reopened (in progress);
# a closed one is final (a new problem is a new complaint).
TRANSITIONS: dict[str, set[str]] = {
    Complaint.Status.OPEN: {Complaint.Status.IN_PROGRESS, Complaint.Status.WAITING, Complaint.Status.RESOLVED,
                            Complaint.Status.CLOSED},
    Complaint.Status.IN_PROGRESS: {Complaint.Status.WAITING, Complaint.Status.RESOLVED, Complaint.Status.CLOSED},
    Complaint.Status.WAITING: {Complaint.Status.IN_PROGRESS, Complaint.Status.RESOLVED, Complaint.Status.CLOSED},
    Complaint.Status.RESOLVED: {Complaint.Status.IN_PROGRESS, Complaint.Status.CLOSED},
    Complaint.Status.CLOSED: set(),
}


def complaint_sla_hours(category: str) -> int:
    return int(settings.LOYALTY_COMPLAINT_SLA_HOURS_BY_CATEGORY.get(category, settings.LOYALTY_COMPLAINT_SLA_HOURS))


def complaint_due_at(category: str, opened_at: datetime) -> datetime:
    return opened_at + timedelta(hours=complaint_sla_hours(category))


@transaction.atomic
def complaint_open(*, member_id: int, category: str, subject: str, description: str, channel: str,
                   store=None, partner=None, staff_user: AbstractBaseUser | None = None,
                   now: datetime | None = None) -> Complaint:
    now = now or timezone.now()
    if category not in Complaint.Category.values:
        raise ValueError(f"unknown category {category!r}")
    member = Member.objects.get(pk=member_id)
    if member.status in (Member.Status.ERASED, Member.Status.MERGED):
        raise MemberNotActive(status=member.get_status_display())
    return Complaint.objects.create(
        member=member, category=category, subject=subject.strip(), description=description.strip(),
        channel=channel, store=store, partner=partner, created_by=staff_user, created_at=now,
        due_at=complaint_due_at(category, now))


def _lock_complaint(complaint_id: int) -> Complaint:
    return Complaint.objects.select_for_update(of=("self",)).select_related("member").get(pk=complaint_id)


@transaction.atomic
def complaint_set_status(*, complaint_id: int, status: str, staff_user: AbstractBaseUser | None = None,
                         now: datetime | None = None) -> Complaint:
    """Move a complaint along TRANSITIONS (compare-and-set on the status it had). Closing it
    invites the member to the survey that follows closed complaints, if there is one."""
    now = now or timezone.now()
    complaint = Complaint.objects.get(pk=complaint_id)
    if status == complaint.status:
        return complaint
    if status not in TRANSITIONS.get(complaint.status, set()):
        raise ComplaintStateError(from_status=complaint.get_status_display(),
                                  to_status=Complaint.Status(status).label if status in Complaint.Status.values
                                  else status)
    fields: dict = {"status": status, "updated_at": now}
    if status == Complaint.Status.RESOLVED:
        fields["resolved_at"] = now
    if status == Complaint.Status.CLOSED:
        fields["closed_at"] = now
        if complaint.resolved_at is None:
            fields["resolved_at"] = now
    if status == Complaint.Status.IN_PROGRESS and complaint.assignee_id is None and staff_user is not None:
        fields["assignee"] = staff_user
    if not Complaint.objects.filter(pk=complaint.pk, status=complaint.status).update(**fields):
        raise ComplaintStateError(from_status=complaint.get_status_display(),
                                  to_status=Complaint.Status(status).label)
    complaint.refresh_from_db()
    if status == Complaint.Status.CLOSED:
        concerns = complaint.partner_id or (complaint.store.partner_id if complaint.store_id else None)
        publish(ComplaintClosed(member_id=complaint.member_id, partner_id=concerns, complaint_id=complaint.pk,
                                status=status, category=complaint.category))
        survey = Survey.objects.filter(active=True, trigger=Survey.Trigger.COMPLAINT_CLOSED).order_by("pk").first()
        if survey is not None:
            complaint_id_ = complaint.pk
            transaction.on_commit(lambda: survey_invite(
                survey_id=survey.pk, member_id=complaint.member_id, reason=SurveyInvitation.Reason.COMPLAINT,
                complaint_id=complaint_id_))
    return complaint


@transaction.atomic
def complaint_update(*, complaint_id: int, category: str | None = None, assignee=None,
                     unassign: bool = False) -> Complaint:
    """Change category (the due date follows the new SLA, counted from the opening) and assignee."""
    complaint = _lock_complaint(complaint_id)
    if category and category != complaint.category:
        complaint.category = category
        complaint.due_at = complaint_due_at(category, complaint.created_at)
    if assignee is not None or unassign:
        complaint.assignee = assignee
    complaint.save(update_fields=["category", "due_at", "assignee", "updated_at"])
    return complaint


@transaction.atomic
def complaint_reply(*, complaint_id: int, body: str, staff_user: AbstractBaseUser | None,
                    now: datetime | None = None) -> ComplaintMessage:
    """A reply to the member: shown in the portal and sent by e-mail after the commit. An open
    complaint is in progress from its first reply."""
    now = now or timezone.now()
    complaint = _lock_complaint(complaint_id)
    if complaint.status == Complaint.Status.CLOSED:
        raise ComplaintStateError(from_status=complaint.get_status_display(),
                                  to_status=ComplaintMessage.Kind.REPLY.label)
    message = ComplaintMessage.objects.create(complaint=complaint, kind=ComplaintMessage.Kind.REPLY,
                                              body=body.strip(), author=staff_user, created_at=now)
    if complaint.status == Complaint.Status.OPEN:
        Complaint.objects.filter(pk=complaint.pk).update(status=Complaint.Status.IN_PROGRESS, updated_at=now)
    from . import tasks

    enqueue(tasks.send_complaint_reply, message.pk)
    return message


@transaction.atomic
def complaint_note(*, complaint_id: int, body: str, staff_user: AbstractBaseUser | None) -> ComplaintMessage:
    """An internal note: staff see it, the member never does."""
    complaint = _lock_complaint(complaint_id)
    return ComplaintMessage.objects.create(complaint=complaint, kind=ComplaintMessage.Kind.NOTE, body=body.strip(),
                                           author=staff_user)


@transaction.atomic
def complaint_member_message(*, complaint_id: int, member_id: int, body: str,
                             now: datetime | None = None) -> ComplaintMessage:
    """The member writes in the portal. Waiting for them (or resolved) puts it back in progress."""
    now = now or timezone.now()
    complaint = _lock_complaint(complaint_id)
    if complaint.member_id != member_id:
        raise Complaint.DoesNotExist
    if complaint.status == Complaint.Status.CLOSED:
        raise ComplaintStateError(from_status=complaint.get_status_display(),
                                  to_status=Complaint.Status.IN_PROGRESS.label)
    message = ComplaintMessage.objects.create(complaint=complaint, kind=ComplaintMessage.Kind.MEMBER,
                                              body=body.strip(), created_at=now)
    if complaint.status in (Complaint.Status.WAITING, Complaint.Status.RESOLVED):
        Complaint.objects.filter(pk=complaint.pk).update(status=Complaint.Status.IN_PROGRESS, updated_at=now)
    return message


def complaint_reply_send(*, message_id: int, connection=None) -> bool:
    """E-mail a reply (a task's body); `emailed_at` is claimed first, so it goes out once."""
    from django.core.mail import EmailMessage, get_connection
    from django.template.loader import render_to_string

    message = (ComplaintMessage.objects.select_related("complaint__member")
               .filter(pk=message_id, kind=ComplaintMessage.Kind.REPLY, emailed_at__isnull=True).first())
    if message is None:
        return False
    member = message.complaint.member
    if not member.email or member.status == Member.Status.ERASED:
        return False
    if not ComplaintMessage.objects.filter(pk=message.pk, emailed_at__isnull=True).update(emailed_at=timezone.now()):
        return False
    with translation.override(member.language or settings.LANGUAGE_CODE):
        context = {"member": member, "complaint": message.complaint, "message": message,
                   "portal_url": public_url(f"/konto/feedback/reklamation/{message.complaint.pk}/")}
        email = EmailMessage(subject=_("Your complaint %(number)s: %(subject)s") % {
            "number": message.complaint.number, "subject": message.complaint.subject},
            body=render_to_string("emails/complaint_reply.txt", context), to=[member.email],
            connection=connection or get_connection())
    return bool(email.send())


@transaction.atomic
def complaint_goodwill_points(*, complaint_id: int, points: int, staff_user: AbstractBaseUser | None) -> PointEntry:
    """Goodwill points through the ledger, once per complaint (reference "complaint:<id>")."""
    staff_points_limits_check(staff_user=staff_user, points=points)  # locks the staff user before the member
    member_id = Complaint.objects.values_list("member_id", flat=True).get(pk=complaint_id)
    member_lock(member_id)  # the lock order: member, then complaint
    complaint = _lock_complaint(complaint_id)
    if complaint.goodwill_points:
        raise GoodwillAlreadyGranted(what=_("goodwill points"))
    entry = points_credit(member_id=member_id, points=points, kind=PointEntry.Kind.BONUS,
                          reason=stored_text("complaint-goodwill", number=complaint.number),
                          source=GOODWILL_SOURCE, reference=f"complaint:{complaint.pk}", created_by=staff_user)
    Complaint.objects.filter(pk=complaint.pk).update(goodwill_points=points)
    return entry


@transaction.atomic
def complaint_goodwill_voucher(*, complaint_id: int, reward_id: int,
                               staff_user: AbstractBaseUser | None = None) -> Redemption:
    """A goodwill voucher (no points taken), once per complaint."""
    from rewards.vouchers import redemption_issue

    member_id = Complaint.objects.values_list("member_id", flat=True).get(pk=complaint_id)
    member_lock(member_id)
    complaint = _lock_complaint(complaint_id)
    if complaint.goodwill_voucher_id:
        raise GoodwillAlreadyGranted(what=_("a goodwill voucher"))
    voucher = redemption_issue(member_id=member_id, reward_id=reward_id, source=Redemption.Source.GOODWILL, points=0)
    Complaint.objects.filter(pk=complaint.pk).update(goodwill_voucher=voucher)
    return voucher


# --- Privacy -------------------------------------------------------------------------------------

ERASED_TEXT = "–"


def feedback_erase_member(*, member_ids: list[int]) -> None:
    """Art. 17 DSGVO, called by the MemberErased subscriber: comments and complaint texts may
    hold anything personal, so they are blanked. Scores, categories and dates stay for the
    statistics (they no longer point at a person once the member is anonymised)."""
    Response.objects.filter(member_id__in=member_ids).exclude(comment="").update(comment="")
    Complaint.objects.filter(member_id__in=member_ids).update(subject=ERASED_TEXT, description=ERASED_TEXT)
    ComplaintMessage.objects.filter(complaint__member_id__in=member_ids).update(body=ERASED_TEXT)
    FollowUp.objects.filter(response__member_id__in=member_ids).exclude(note="").update(note=ERASED_TEXT)


def feedback_merge(*, survivor_id: int, duplicate_id: int) -> None:
    """Called by the MembersMerged subscriber: answers, complaints and invitations follow the
    person, so the survivor's portal shows them. (The survey rewards already paid stay
    referenced to the duplicate: the survivor may be paid once more for a survey both answered.)"""
    Response.objects.filter(member_id=duplicate_id).update(member_id=survivor_id)
    Complaint.objects.filter(member_id=duplicate_id).update(member_id=survivor_id)
    SurveyInvitation.objects.filter(member_id=duplicate_id).update(member_id=survivor_id)
