"""The console for feedback: surveys with their results, answers, the follow-up queue and the
complaint queue.

- Surveys (marketing): the change page shows NPS / CSAT / CES with the trend by month (a chart)
  and the breakdown by tier, store and segment (feedback.metrics, aggregate queries).
  "Invite the segment" queues the set-based invitation job.
- Answers are records: read-only, with filters by survey, score group, channel, store, tier.
- Follow-ups and complaints (support) are queues: open ones first, overdue rows are marked red.
  A follow-up shows the member's name (a link to the member), e-mail and phone, nothing of an
  erased member; only active staff can be assigned. A complaint is
  changed through feedback.services: the change form's extra fields (new status, reply to the
  member, internal note, goodwill points or voucher) each call a service in `save_model`, and
  problems (a transition that is not allowed, goodwill given twice) are form errors.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Case, Count, F, Q, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget

from core.admin_utils import EstimatedCountPaginator, LabelledInlineMixin, MemberNumberSearchMixin, ReadOnlyAdminMixin
from core.errors import LoyaltyError
from members.models import Member
from transfers.admin import ExportActionsMixin

from . import metrics, services
from .models import Complaint, ComplaintMessage, FollowUp, Response, Survey

STATUS_COLOURS = {"open": "warning", "in_progress": "info", "waiting": "primary", "resolved": "success",
                  "closed": "success", "done": "success"}


def _due_display(obj, overdue: bool):
    when = timezone.localtime(obj.due_at).strftime("%Y-%m-%d %H:%M")
    return ("overdue", f"⚠ {when}") if overdue else ("due", when)


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"
    open_statuses: tuple = ()

    def lookups(self, request, model_admin):
        return [("yes", _("overdue")), ("no", _("on time"))]

    def queryset(self, request, queryset):
        overdue = Q(status__in=self.open_statuses, due_at__lt=timezone.now())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


# --- Surveys -------------------------------------------------------------------------------------

RESULT_MONTHS = 12
MAX_SEGMENTS_SHOWN = 10


def survey_results(survey: Survey, *, now=None) -> dict:
    """What the survey page shows: overall, the last 12 months as a chart, and the breakdowns."""
    from campaigns.models import Segment

    now = now or timezone.now()
    answers = Response.objects.filter(survey=survey)
    first_day = (timezone.localdate(now).replace(day=1) - timedelta(days=31 * (RESULT_MONTHS - 1))).replace(day=1)
    start = timezone.make_aware(datetime.combine(first_day, time.min))
    recent = metrics.in_period(answers, start=start)
    months = metrics.by_month(recent, survey.kind)
    label = {"nps": "NPS", "csat": "CSAT (%)", "ces": "CES"}[survey.kind]
    return {
        "overall": metrics.summarize(answers, survey.kind),
        "last_30_days": metrics.summarize(metrics.in_period(answers, start=now - timedelta(days=30)), survey.kind),
        "months": months,
        "chart": json.dumps(metrics.trend_chart(months, label=label)),
        "tiers": metrics.by_tier(answers, survey.kind),
        "stores": metrics.by_store(answers, survey.kind),
        "segments": metrics.by_segment(answers, survey.kind, Segment.objects.order_by("name")[:MAX_SEGMENTS_SHOWN]),
        "label": label,
        "is_nps": survey.kind == Survey.Kind.NPS,
    }


@admin.register(Survey)
class SurveyAdmin(ModelAdmin):
    list_display = ["name", "kind", "trigger", "active", "reward_points", "answer_count", "open_follow_ups"]
    list_filter = ["kind", "trigger", "active"]
    search_fields = ["name", "question_de", "question_en"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "active", "reward_points"]}),
        (_("Texts"), {"fields": ["question_de", "question_en", "follow_up_de", "follow_up_en"]}),
        (_("Invitations"), {"fields": ["trigger", "delay_days", "sample_percent", "segment"]}),
    ]
    autocomplete_fields = ["segment"]
    actions = ["invite_segment"]
    change_form_after_template = "admin/feedback/survey/results.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            answers=Count("responses", distinct=True),
            follow_ups=Count("responses__follow_up", filter=Q(responses__follow_up__status=FollowUp.Status.OPEN),
                             distinct=True))

    @display(description=_("answers"), ordering="answers")
    def answer_count(self, obj) -> int:
        return obj.answers

    @display(description=_("open follow-ups"), ordering="follow_ups")
    def open_follow_ups(self, obj) -> int:
        return obj.follow_ups

    def get_readonly_fields(self, request, obj=None):
        # Answers are read on the scale of their survey's kind: it cannot change under them.
        if obj is not None and obj.responses.exists():
            return ["kind"]
        return []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        survey = self.get_object(request, object_id)
        if survey is not None:
            extra_context["results"] = survey_results(survey)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Invite the survey's segment (members not asked recently)"),
                  permissions=["change"])
    def invite_segment(self, request, queryset):
        from core.tasks import enqueue

        from . import tasks

        for survey in queryset:
            if not survey.active:
                self.message_user(request, _("%(survey)s is not active.") % {"survey": survey}, messages.WARNING)
                continue
            enqueue(tasks.invite_segment, survey.pk)
            self.message_user(request, _("Invitations for %(survey)s are being prepared.") % {"survey": survey},
                              messages.SUCCESS)


# --- Answers -------------------------------------------------------------------------------------

class ScoreGroupFilter(admin.SimpleListFilter):
    title = _("score group")
    parameter_name = "group"

    def lookups(self, request, model_admin):
        return [(metrics.PROMOTER, _("promoters / satisfied")), (metrics.PASSIVE, _("passives / neutral")),
                (metrics.DETRACTOR, _("detractors / unhappy"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value not in (metrics.PROMOTER, metrics.PASSIVE, metrics.DETRACTOR):
            return queryset
        condition = Q()
        for kind, (positive, negative) in metrics.THRESHOLDS.items():
            if value == metrics.PROMOTER:
                part = Q(survey__kind=kind, score__gte=positive)
            elif value == metrics.DETRACTOR:
                part = Q(survey__kind=kind, score__lte=negative)
            else:
                part = Q(survey__kind=kind, score__gt=negative, score__lt=positive)
            condition |= part
        return queryset.filter(condition)


class HasCommentFilter(admin.SimpleListFilter):
    title = _("comment")
    parameter_name = "commented"

    def lookups(self, request, model_admin):
        return [("yes", _("with a comment")), ("no", _("without"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(comment="")
        if self.value() == "no":
            return queryset.filter(comment="")
        return queryset


@admin.register(Response)
class ResponseAdmin(MemberNumberSearchMixin, ExportActionsMixin, ReadOnlyAdminMixin, ModelAdmin):
    export_kind = "answers"  # transfers.admin: CSV / Excel export for staff allowed to export them
    list_display = ["created_at", "survey", "score_badge", "short_comment", "channel", "store", "tier", "member"]
    list_select_related = ["survey", "store", "tier", "member"]
    list_filter = ["survey", ScoreGroupFilter, HasCommentFilter, "channel", "store", "tier",
                   ("created_at", admin.DateFieldListFilter)]
    search_fields = ["comment", "=member__customer_number"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-created_at", "-id"]

    @display(description=_("score"), label={metrics.PROMOTER: "success", metrics.PASSIVE: "warning",
                                             metrics.DETRACTOR: "danger"})
    def score_badge(self, obj):
        return metrics.classify(obj.survey.kind, obj.score), str(obj.score)

    @display(description=_("comment"))
    def short_comment(self, obj) -> str:
        return obj.comment if len(obj.comment) <= 120 else obj.comment[:119] + "…"


# --- Follow-ups ----------------------------------------------------------------------------------

def active_staff():
    """Who may be given a task in the queues: active staff users, by name."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")


class FollowUpOverdueFilter(OverdueFilter):
    open_statuses = (FollowUp.Status.OPEN,)


class StaffAssigneeFilter(admin.RelatedFieldListFilter):
    """The assignee filter offers active staff only (not every customer login)."""

    def field_choices(self, field, request, model_admin):
        return [(user.pk, str(user)) for user in active_staff()]


class FollowUpForm(forms.ModelForm):
    class Meta:
        model = FollowUp
        fields = ["assignee", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "assignee" in self.fields:  # a posted non-staff id is then "not one of the available choices"
            self.fields["assignee"].queryset = active_staff()


def _member_link(member) -> str:
    url = reverse("admin:members_member_change", args=[member.pk])
    return format_html('<a href="{}" class="text-primary-600 underline">{}</a>', url,
                       member.full_name or member.customer_number)


@admin.register(FollowUp)
class FollowUpAdmin(MemberNumberSearchMixin, ModelAdmin):
    form = FollowUpForm
    list_display = ["due", "status_badge", "score", "survey", "member", "contact", "comment", "assignee"]
    list_select_related = ["response__survey", "response__member", "assignee"]
    list_filter = ["status", FollowUpOverdueFilter, ("assignee", StaffAssigneeFilter)]
    search_fields = ["=response__member__customer_number", "response__comment"]
    fields = ["response_summary", "member", "contact", "status", "due_at", "assignee", "note", "done_at", "done_by"]
    readonly_fields = ["response_summary", "member", "contact", "status", "due_at", "done_at", "done_by"]
    actions = ["assign_to_me", "mark_done"]
    show_full_result_count = False

    def get_ordering(self, request):
        # The queue: open tasks first, the most urgent on top; done ones last, the latest first.
        return ["finished", F("done_at").desc(nulls_first=True), "due_at", "id"]

    def get_queryset(self, request):
        # Annotated before the ordering applies (ModelAdmin.get_queryset would order first).
        queryset = (FollowUp.objects.select_related("response__survey", "response__member", "assignee", "done_by")
                    .annotate(finished=Case(When(status=FollowUp.Status.OPEN, then=Value(0)), default=Value(1))))
        return queryset.order_by(*self.get_ordering(request))

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description=_("due"), ordering="due_at", label={"overdue": "danger", "due": ""})
    def due(self, obj):
        return _due_display(obj, obj.is_overdue)

    @display(description=_("status"), label=STATUS_COLOURS)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("score"))
    def score(self, obj) -> int:
        return obj.response.score

    @display(description=_("survey"))
    def survey(self, obj):
        return obj.response.survey

    @display(description=_("member"))
    def member(self, obj):
        member = obj.response.member
        if member is None:
            return _("anonymous")
        if member.status == Member.Status.ERASED:
            return _("erased member")
        return _member_link(member)

    @display(description=_("contact"))
    def contact(self, obj):
        member = obj.response.member
        if member is None or member.status == Member.Status.ERASED:
            return "–"
        details = [value for value in (member.email, member.phone) if value]
        return format_html_join(mark_safe("<br>"), "{}", ((value,) for value in details)) if details else "–"

    @display(description=_("comment"))
    def comment(self, obj) -> str:
        return obj.response.comment[:120]

    @display(description=_("answer"))
    def response_summary(self, obj) -> str:
        response = obj.response
        return f"{response.survey}: {response.score} — {response.comment or '–'}"

    def save_model(self, request, obj, form, change):
        # Only the assignee and the note are edited here; the status changes through the action.
        services.follow_up_assign(follow_up_id=obj.pk, assignee=obj.assignee)
        FollowUp.objects.filter(pk=obj.pk).update(note=obj.note)

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        for follow_up in queryset.filter(status=FollowUp.Status.OPEN):
            services.follow_up_assign(follow_up_id=follow_up.pk, assignee=request.user)
        self.message_user(request, _("Assigned to you."), messages.SUCCESS)

    @admin.action(description=_("Mark as done"), permissions=["change"])
    def mark_done(self, request, queryset):
        done = sum(services.follow_up_complete(follow_up_id=pk, staff_user=request.user)
                   for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, _("%(count)s follow-ups done.") % {"count": done}, messages.SUCCESS)


# --- Complaints ----------------------------------------------------------------------------------

class ComplaintOverdueFilter(OverdueFilter):
    open_statuses = Complaint.OPEN_STATUSES


class ComplaintMessageInline(LabelledInlineMixin, TabularInline):
    model = ComplaintMessage
    fields = ["created_at", "kind", "body", "author", "emailed_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


class ComplaintChangeForm(forms.ModelForm):
    """The complaint's own fields staff may change, plus one field per service call."""

    new_status = forms.ChoiceField(label=_("change status to"), required=False,
                                   choices=[("", "–"), *Complaint.Status.choices], widget=UnfoldAdminSelectWidget)
    reply = forms.CharField(label=_("reply to the member (sent by e-mail)"), required=False, max_length=4000,
                            widget=UnfoldAdminTextareaWidget(attrs={"rows": 4}))
    note = forms.CharField(label=_("internal note (never shown to the member)"), required=False, max_length=4000,
                           widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}))
    give_points = forms.IntegerField(label=_("give goodwill points"), required=False, min_value=1, max_value=100_000,
                                         widget=UnfoldAdminIntegerFieldWidget)
    give_voucher = forms.ModelChoiceField(label=_("give a goodwill voucher"), required=False, queryset=None,
                                             widget=UnfoldAdminSelectWidget)

    class Meta:
        model = Complaint
        fields = ["category", "assignee"]

    def __init__(self, *args, **kwargs):
        from rewards.models import Reward

        super().__init__(*args, **kwargs)
        self.fields["give_voucher"].queryset = Reward.objects.filter(active=True).order_by("name_de")
        if "assignee" in self.fields:
            self.fields["assignee"].queryset = active_staff()

    def clean(self):
        cleaned = super().clean()
        complaint, user = self.instance, self.request_user
        status = cleaned.get("new_status")
        if status and status != complaint.status and status not in services.TRANSITIONS[complaint.status]:
            self.add_error("new_status",
                           _("Not possible from %(status)s.") % {"status": complaint.get_status_display()})
        if cleaned.get("reply") and complaint.status == Complaint.Status.CLOSED:
            self.add_error("reply", _("The complaint is closed."))
        points = cleaned.get("give_points")
        if points:
            if not user.has_perm("members.adjust_points"):
                self.add_error("give_points", _("You may not give points."))
            elif complaint.goodwill_points:
                self.add_error("give_points", _("Goodwill points were already given."))
            elif points > settings.LOYALTY_SUPPORT_ADJUST_LIMIT and not user.has_perm(
                    "members.adjust_points_unlimited"):
                self.add_error("give_points", _("Adjustments above %(limit)s points need an administrator.")
                               % {"limit": settings.LOYALTY_SUPPORT_ADJUST_LIMIT})
        if cleaned.get("give_voucher") and complaint.goodwill_voucher_id:
            self.add_error("give_voucher", _("A goodwill voucher was already given."))
        return cleaned


class ComplaintAddForm(forms.ModelForm):
    class Meta:
        model = Complaint
        fields = ["member", "category", "subject", "description", "store", "assignee"]


@admin.register(Complaint)
class ComplaintAdmin(MemberNumberSearchMixin, ModelAdmin):
    list_display = ["number_link", "subject", "member", "category", "status_badge", "due", "assignee", "channel",
                    "created_at"]
    list_display_links = ["number_link"]
    list_select_related = ["member", "assignee"]
    list_filter = ["status", ComplaintOverdueFilter, "category", ("assignee", StaffAssigneeFilter), "channel"]
    search_fields = ["=id", "subject", "=member__customer_number", "=member__card_number"]
    ordering = ["due_at", "id"]
    show_full_result_count = False
    raw_id_fields = ["member"]
    inlines = [ComplaintMessageInline]
    actions = ["assign_to_me", "mark_in_progress", "mark_resolved", "mark_closed"]

    def get_ordering(self, request):
        return ["finished", "due_at", "id"]  # the queue: open ones first, the most urgent on top

    def get_queryset(self, request):
        # Annotated before the ordering applies (ModelAdmin.get_queryset would order first).
        queryset = (Complaint.objects.select_related("member", "assignee", "store", "goodwill_voucher__reward")
                    .annotate(finished=Case(When(status__in=Complaint.OPEN_STATUSES, then=Value(0)),
                                            default=Value(1))))
        return queryset.order_by(*self.get_ordering(request))

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ComplaintChangeForm if obj is not None else ComplaintAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request_user = request.user
        return form

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["member", "category", "subject", "description", "store", "assignee"]})]
        return [
            (None, {"fields": ["number", "member", "status", "due_at", "channel", "store", "created_at",
                               "resolved_at", "closed_at"]}),
            (_("Complaint"), {"fields": ["category", "subject", "description", "assignee"]}),
            (_("Work on it"), {"fields": ["new_status", "reply", "note"]}),
            (_("Goodwill"), {"fields": ["goodwill_points_given", "goodwill_voucher", "give_points",
                                        "give_voucher"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["number", "member", "status", "due_at", "channel", "store", "created_at", "resolved_at", "closed_at",
                "subject", "description", "goodwill_points_given", "goodwill_voucher"]

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description=_("number"), ordering="id")
    def number_link(self, obj) -> str:
        return obj.number

    @display(description=_("goodwill points given"))
    def goodwill_points_given(self, obj) -> int:
        return obj.goodwill_points

    @display(description=_("status"), label=STATUS_COLOURS)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("due"), ordering="due_at", label={"overdue": "danger", "due": ""})
    def due(self, obj):
        return _due_display(obj, obj.is_overdue)

    def save_model(self, request, obj, form, change):
        if not change:
            data = form.cleaned_data
            complaint = services.complaint_open(
                member_id=data["member"].pk, category=data["category"], subject=data["subject"],
                description=data["description"], channel=Complaint.Channel.STAFF, store=data.get("store"),
                staff_user=request.user)
            if data.get("assignee"):
                services.complaint_update(complaint_id=complaint.pk, assignee=data["assignee"])
            obj.pk = complaint.pk
            obj._state.adding = False
            return
        data = form.cleaned_data
        calls = [
            lambda: services.complaint_update(complaint_id=obj.pk, category=data["category"],
                                              assignee=data.get("assignee"), unassign=not data.get("assignee")),
            lambda: data.get("note") and services.complaint_note(complaint_id=obj.pk, body=data["note"],
                                                                 staff_user=request.user),
            lambda: data.get("reply") and services.complaint_reply(complaint_id=obj.pk, body=data["reply"],
                                                                   staff_user=request.user),
            lambda: data.get("new_status") and services.complaint_set_status(
                complaint_id=obj.pk, status=data["new_status"], staff_user=request.user),
            lambda: data.get("give_points") and services.complaint_goodwill_points(
                complaint_id=obj.pk, points=data["give_points"], staff_user=request.user),
            lambda: data.get("give_voucher") and services.complaint_goodwill_voucher(
                complaint_id=obj.pk, reward_id=data["give_voucher"].pk, staff_user=request.user),
        ]
        for call in calls:
            try:
                call()
            except LoyaltyError as error:
                self.message_user(request, str(error), messages.ERROR)

    def _set_status(self, request, queryset, status: str) -> None:
        changed = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                services.complaint_set_status(complaint_id=pk, status=status, staff_user=request.user)
                changed += 1
            except LoyaltyError as error:
                self.message_user(request, str(error), messages.WARNING)
        self.message_user(request, _("%(count)s complaints changed.") % {"count": changed}, messages.SUCCESS)

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            services.complaint_update(complaint_id=pk, assignee=request.user)
        self.message_user(request, _("Assigned to you."), messages.SUCCESS)

    @admin.action(description=_("Mark as in progress"), permissions=["change"])
    def mark_in_progress(self, request, queryset):
        self._set_status(request, queryset, Complaint.Status.IN_PROGRESS)

    @admin.action(description=_("Mark as resolved"), permissions=["change"])
    def mark_resolved(self, request, queryset):
        self._set_status(request, queryset, Complaint.Status.RESOLVED)

    @admin.action(description=_("Close"), permissions=["change"])
    def mark_closed(self, request, queryset):
        self._set_status(request, queryset, Complaint.Status.CLOSED)
