"""Feedback: NPS, CSAT and CES surveys, invitations, responses, follow-ups and complaints.

- A `Survey` asks one question on the scale of its kind (NPS 0-10, CSAT 1-5, CES 1-7, where a
  high CES means "it was easy"), optionally a follow-up question answered in free text, and may
  reward an answer with points, once per member per survey (the ledger's unique
  (source, reference) = ("survey", "survey:<survey>:<member>") makes sure of that).
- A `SurveyInvitation` is one member asked once. Its e-mail carries signed one-click links (the
  score in the link); the invitation's `answered_at` and the unique `Response.invitation` make
  the link usable once. A member is invited at most once per LOYALTY_SURVEY_THROTTLE_DAYS.
- A `Response` keeps the member's tier and the store at the time, so breakdowns stay true after
  tier changes. Detractors (NPS 0-6) and unhappy CSAT answers (1-2) open a `FollowUp`.
- A `Complaint` (Reklamation) has a status with allowed transitions (feedback.services), an
  assignee, a due date from the SLA of its category, and messages: the member's, replies sent
  to the member by e-mail, and internal notes the member never sees.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.translation import TranslatedFieldsMixin, translated
from core.validators import LONG_TEXT_MAX
from members.models import Member, Tier


class Survey(TranslatedFieldsMixin, models.Model):
    class Kind(models.TextChoices):
        NPS = "nps", _("NPS (0-10)")
        CSAT = "csat", _("CSAT (1-5)")
        CES = "ces", _("CES (1-7)")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("manual (segment invitations, portal, tablet)")
        PURCHASE = "purchase", _("after a purchase")
        COMPLAINT_CLOSED = "complaint_closed", _("after a complaint is closed")

    SCALES = {Kind.NPS: (0, 10), Kind.CSAT: (1, 5), Kind.CES: (1, 7)}

    name = models.CharField(_("name"), max_length=120, unique=True, help_text=_("Internal name."))
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices, default=Kind.NPS)
    question_de = models.CharField(_("question (German)"), max_length=255)
    question_en = models.CharField(_("question (English)"), max_length=255, blank=True)
    follow_up_de = models.CharField(_("follow-up question (German)"), max_length=255, blank=True,
                                    help_text=_("Optional, answered in free text after the score."))
    follow_up_en = models.CharField(_("follow-up question (English)"), max_length=255, blank=True)
    trigger = models.CharField(_("invite"), max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    segment = models.ForeignKey("campaigns.Segment", verbose_name=_("segment"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+",
                                help_text=_("For invitations to a segment (the \"invite segment\" action)."))
    delay_days = models.PositiveSmallIntegerField(_("days after the purchase"), default=3)
    sample_percent = models.PositiveSmallIntegerField(_("sample (% of buyers)"), default=20)
    reward_points = models.PositiveIntegerField(_("points for answering"), default=0,
                                                help_text=_("Paid once per member and survey; 0: none."))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        constraints = [
            models.CheckConstraint(condition=Q(sample_percent__lte=100), name="survey_sample_is_percent"),
        ]

    def __str__(self) -> str:
        return self.name

    question = translated()

    follow_up = translated()

    @property
    def scale(self) -> tuple[int, int]:
        return self.SCALES[self.kind]

    @property
    def scores(self) -> list[int]:
        low, high = self.scale
        return list(range(low, high + 1))


class SurveyInvitation(models.Model):
    class Reason(models.TextChoices):
        PURCHASE = "purchase", _("after a purchase")
        COMPLAINT = "complaint", _("after a complaint")
        SEGMENT = "segment", _("segment")
        MANUAL = "manual", _("manual")

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="survey_invitations")
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    purchase = models.ForeignKey("rewards.Purchase", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    complaint = models.ForeignKey("feedback.Complaint", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(_("invited at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    sent_at = models.DateTimeField(_("e-mail sent at"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")
        constraints = [
            # The daily purchase job and a closed complaint invite once, however often they run.
            models.UniqueConstraint(fields=["survey", "purchase"], condition=Q(purchase__isnull=False),
                                    name="invitation_once_per_purchase"),
            models.UniqueConstraint(fields=["survey", "complaint"], condition=Q(complaint__isnull=False),
                                    name="invitation_once_per_complaint"),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")),
                                   name="invitation_expires_after_creation"),
        ]
        indexes = [models.Index(fields=["member", "-created_at"], name="invitation_member_time")]

    def __str__(self) -> str:
        return f"{self.survey} → {self.member_id}"

    def is_open(self, now=None) -> bool:
        return self.answered_at is None and self.expires_at > (now or timezone.now())


class ResponseQuerySet(models.QuerySet):
    def of_kind(self, kind: str) -> ResponseQuerySet:
        return self.filter(survey__kind=kind)


class Response(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail link")
        PORTAL = "portal", _("portal")
        API = "api", _("API (till tablet)")
        STAFF = "staff", _("staff")

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="responses")
    invitation = models.OneToOneField(SurveyInvitation, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="response")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="survey_responses", help_text=_("Empty: anonymous."))
    score = models.SmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    store = models.ForeignKey("partners.Store", verbose_name=_("store"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    partner = models.ForeignKey("partners.Partner", verbose_name=_("partner"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    tier = models.ForeignKey(Tier, verbose_name=_("tier at the time"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    language = models.CharField(_("language"), max_length=2, blank=True)
    created_at = models.DateTimeField(_("answered at"), default=timezone.now)
    # The member changed the score or the comment afterwards (the e-mail link's page allows that
    # for LOYALTY_SURVEY_CHANGE_DAYS): the row holds the latest answer, so it counts once.
    changed_at = models.DateTimeField(_("changed at"), null=True, blank=True)

    objects = ResponseQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=10), name="response_score_in_range"),
        ]
        indexes = [
            models.Index(fields=["survey", "-created_at"], name="response_survey_time"),
            models.Index(fields=["created_at"], name="response_time"),
        ]

    def __str__(self) -> str:
        return f"{self.survey}: {self.score}"

    @property
    def category(self) -> str:
        """promoter / passive / detractor for NPS, positive / neutral / negative otherwise."""
        from .metrics import classify

        return classify(self.survey.kind, self.score)


class FollowUp(models.Model):
    """A task for support: call back an unhappy customer (opened by a detractor's answer)."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        DONE = "done", _("done")
        # The member changed their answer and is no longer unhappy: nobody needs to call.
        CANCELLED = "cancelled", _("cancelled")

    response = models.OneToOneField(Response, on_delete=models.CASCADE, related_name="follow_up")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("assignee"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    due_at = models.DateTimeField(_("due"))
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("done by"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        indexes = [models.Index(fields=["due_at"], condition=Q(status="open"), name="follow_up_open_due")]
        constraints = [
            models.CheckConstraint(condition=Q(status="open") | Q(done_at__isnull=False),
                                   name="follow_up_done_says_when"),
        ]

    def __str__(self) -> str:
        return str(_("Follow-up #%(id)s") % {"id": self.pk})

    @property
    def is_overdue(self) -> bool:
        return self.status == self.Status.OPEN and self.due_at < timezone.now()


class Complaint(models.Model):
    class Category(models.TextChoices):
        PRODUCT = "product", _("product quality")
        SERVICE = "service", _("service in the store")
        DELIVERY = "delivery", _("delivery")
        POINTS = "points", _("points")
        VOUCHER = "voucher", _("voucher")
        BILLING = "billing", _("payment and billing")
        OTHER = "other", _("other")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        IN_PROGRESS = "in_progress", _("in progress")
        WAITING = "waiting", _("waiting for customer")
        RESOLVED = "resolved", _("resolved")
        CLOSED = "closed", _("closed")

    class Channel(models.TextChoices):
        PORTAL = "portal", _("portal")
        STAFF = "staff", _("staff")
        API = "api", _("API")

    OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.WAITING)

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="complaints")
    category = models.CharField(_("category"), max_length=10, choices=Category.choices)
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), max_length=LONG_TEXT_MAX)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    channel = models.CharField(_("opened through"), max_length=10, choices=Channel.choices)
    store = models.ForeignKey("partners.Store", verbose_name=_("store"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    partner = models.ForeignKey("partners.Partner", verbose_name=_("partner"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+",
                                help_text=_("The partner whose API opened it."))
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("assignee"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    due_at = models.DateTimeField(_("due"))
    created_at = models.DateTimeField(_("opened at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("opened by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    goodwill_points = models.PositiveIntegerField(_("goodwill points"), default=0, editable=False)
    goodwill_voucher = models.OneToOneField("rewards.Redemption", verbose_name=_("goodwill voucher"), null=True,
                                            blank=True, on_delete=models.SET_NULL, related_name="+",
                                            editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        constraints = [
            models.CheckConstraint(condition=~Q(status="closed") | Q(closed_at__isnull=False),
                                   name="complaint_closed_says_when"),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status__in=["open", "in_progress", "waiting"]),
                         name="complaint_open_due"),
            models.Index(fields=["member", "-created_at"], name="complaint_member_time"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.subject}"

    @property
    def number(self) -> str:
        return f"R-{self.pk or 0:06d}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        # Waiting for the customer stops nobody's clock but ours: it still counts as overdue.
        return self.is_open and self.due_at < timezone.now()


class ComplaintMessage(models.Model):
    class Kind(models.TextChoices):
        MEMBER = "member", _("from the member")
        REPLY = "reply", _("reply to the member")
        NOTE = "note", _("internal note")

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(_("kind"), max_length=6, choices=Kind.choices)
    body = models.TextField(_("text"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("staff user"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("when"), default=timezone.now)
    emailed_at = models.DateTimeField(_("e-mailed at"), null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("complaint message")
        verbose_name_plural = _("complaint messages")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"
