"""The console for segments, campaigns, messages and raffles.

- Segments are built from condition rows (field, operator, value, period) validated against
  the whitelist in campaigns.segments; the page shows the live audience size and a sample.
- Campaigns are edited while they are drafts; starting, pausing, resuming, stopping, retrying
  and drawing a raffle are actions with a confirmation page (a POST) that call the services.
  The page shows progress and results: sent, skipped by reason, failed, conversions, revenue
  and the uplift over the control group with its 95 % confidence interval, and the variants
  against each other (B against A) with the same interval. A finished campaign is a record:
  read-only, results first, only the actions that still apply (retry, draw).
- The variant's text fields carry a placeholder picker (static/console/placeholder_picker.js);
  a draft can be sent as a test to the staff user's own address (sample member values).
- Messages and raffle entries are records: read-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin, StackedInline, TabularInline
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from core.admin_utils import EstimatedCountPaginator, LabelledInlineMixin, MemberNumberSearchMixin, ReadOnlyAdminMixin
from core.db_router import reading_replica
from core.errors import LoyaltyError
from members.push import push_configured, push_not_configured_text

from . import raffles, rendering, selectors, sending, services, stalls
from .errors import InvalidCondition, InvalidTemplate, TestAddressMissing
from .models import Campaign, Message, RaffleEntry, Segment, SegmentCondition, Variant
from .segments import (
    FIELD_CHOICES,
    FIELDS,
    FIELDS_BY_OPERATOR,
    OPERATOR_CHOICES,
    OPERATORS,
    Condition,
    condition_validate,
    members_from_definition,
    segment_queryset,
)

# --- Segments ---------------------------------------------------------------------------------


BLANK_CHOICE = [("", "—")]
# The live count reads at most this many condition rows from the edited form.
MAX_LIVE_CONDITIONS = 100


class FieldSelect(UnfoldAdminSelectWidget):
    """Field options say whether the field has a period (static/console/segment_editor.js enables
    the days input only then)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in FIELDS:
            option["attrs"]["data-period"] = "1" if FIELDS[value].uses_period else "0"
        return option


class OperatorSelect(UnfoldAdminSelectWidget):
    """Operator options name the fields they fit; segment_editor.js offers only those (and
    condition_validate refuses the rest on the server)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in FIELDS_BY_OPERATOR:
            option["attrs"]["data-fields"] = " ".join(FIELDS_BY_OPERATOR[value])
        return option


class SegmentConditionForm(forms.ModelForm):
    # A blank first choice: the empty extra row posts nothing, so the formset leaves it out
    # (a preselected first field made every save of a segment fail on that row).
    field = forms.ChoiceField(label=_("field"), choices=BLANK_CHOICE + FIELD_CHOICES, widget=FieldSelect)
    operator = forms.ChoiceField(label=_("operator"), choices=BLANK_CHOICE + OPERATOR_CHOICES, widget=OperatorSelect)
    value = forms.CharField(label=_("value"), required=False, max_length=500, widget=UnfoldAdminTextInputWidget)

    class Meta:
        model = SegmentCondition
        fields = ["group", "field", "operator", "value", "days"]

    def has_changed(self) -> bool:
        # A new row without a field and a value is the blank row, whatever else its selects say.
        if self.instance.pk is None and not self.data.get(self.add_prefix("field")) \
                and not self.data.get(self.add_prefix("value")):
            return False
        return super().has_changed()

    def clean(self):
        cleaned = super().clean()
        if self.errors or cleaned.get("DELETE"):
            return cleaned
        condition = Condition(field=cleaned["field"], operator=cleaned["operator"], value=cleaned.get("value") or "",
                              days=cleaned.get("days"), group=cleaned.get("group") or 1)
        try:
            condition_validate(condition)
        except InvalidCondition as error:
            raise forms.ValidationError(str(error)) from None
        return cleaned


class SegmentConditionInline(LabelledInlineMixin, TabularInline):
    model = SegmentCondition
    form = SegmentConditionForm
    extra = 1
    fields = ["group", "field", "operator", "value", "days"]


def conditions_from_form_data(data) -> list[dict]:
    """The condition rows of the edited (unsaved) segment form, as members_from_definition takes
    them: rows without a field or marked for deletion left out."""
    rows = []
    for index in range(min(_int(data.get("conditions-TOTAL_FORMS")), MAX_LIVE_CONDITIONS)):
        prefix = f"conditions-{index}-"
        if not data.get(prefix + "field") or data.get(prefix + "DELETE"):
            continue
        days = _int(data.get(prefix + "days"), default=None)
        rows.append({"field": data.get(prefix + "field", ""), "operator": data.get(prefix + "operator", ""),
                     "value": data.get(prefix + "value", ""), "days": days,
                     "group": _int(data.get(prefix + "group"), default=1)})
    return rows


def _int(text, default=0):
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return default


@admin.register(Segment)
class SegmentAdmin(ModelAdmin):
    list_display = ["name", "conditions_summary", "updated_at"]
    search_fields = ["name"]
    fields = ["name", "description"]
    inlines = [SegmentConditionInline]
    change_form_after_template = "admin/campaigns/segment/audience.html"

    class Media:
        js = ["console/segment_editor.js"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("conditions")

    def get_urls(self):
        count = self.admin_site.admin_view(self.live_count_view)
        return [path("live-count/", count, name="campaigns_segment_live_count"), *super().get_urls()]

    def live_count_view(self, request):
        """The audience of the conditions as they stand in the form, before saving (JSON)."""
        if request.method != "POST":
            return JsonResponse({"error": str(_("Send the form with POST."))}, status=405)
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            with reading_replica():  # a count over every member, asked on each edit: read-only
                count = members_from_definition(conditions_from_form_data(request.POST)).count()
        except InvalidCondition as error:
            return JsonResponse({"error": str(error)}, status=400)
        text = ngettext("%(count)s active member matches the conditions as entered.",
                        "%(count)s active members match the conditions as entered.", count) % {
            "count": intcomma(count)}
        return JsonResponse({"count": count, "text": text})

    @display(description=_("conditions"))
    def conditions_summary(self, obj: Segment) -> str:
        groups: dict[int, list[str]] = {}
        for row in obj.conditions.all():
            groups.setdefault(row.group, []).append(str(row))
        return str(_(" OR ")).join(" & ".join(items) for _group, items in sorted(groups.items())) or "–"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), **self._editor_context()}
        segment = self.get_object(request, object_id)
        if segment is not None:
            try:
                extra_context["audience"] = selectors.segment_preview(segment)
            except LoyaltyError as error:  # a condition that no longer validates (a tier was renamed)
                extra_context["audience_error"] = str(error)
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {**(extra_context or {}), **self._editor_context()})

    @staticmethod
    def _editor_context() -> dict:
        return {"whitelist": [(key, field.label, [OPERATORS[name] for name in field.operators], field.help,
                               field.uses_period) for key, field in FIELDS.items()],
                "live_count_url": reverse("admin:campaigns_segment_live_count")}


# --- Campaigns --------------------------------------------------------------------------------


def _placeholder_picker() -> str:
    """The allowed placeholders as buttons (static/console/placeholder_picker.js inserts the
    clicked one at the cursor of the field in the same wrapper)."""
    buttons = format_html_join(
        "", '<li><button type="button" class="placeholder-insert border border-base-200 rounded-default px-2 '
            'py-0.5 text-xs dark:border-base-700" data-placeholder="{}" title="{}">{}</button></li>',
        ((code, code, label) for code, label in rendering.placeholders()))
    return format_html('<details class="placeholder-picker mt-1"><summary class="text-sm cursor-pointer">{}</summary>'
                       '<ul class="flex flex-wrap gap-1 mt-1" aria-label="{}">{}</ul></details>',
                       _("Insert a placeholder"), _("Placeholders"), buttons)


class _WithPlaceholderPicker:
    def render(self, name, value, attrs=None, renderer=None):
        field = super().render(name, value, attrs, renderer)
        return format_html('<div class="placeholder-field">{}{}</div>', field, _placeholder_picker())


class PlaceholderTextInput(_WithPlaceholderPicker, UnfoldAdminTextInputWidget):
    pass


class PlaceholderTextarea(_WithPlaceholderPicker, UnfoldAdminTextareaWidget):
    pass


class VariantForm(forms.ModelForm):
    class Meta:
        model = Variant
        fields = ["name", "weight", "subject_de", "body_de", "subject_en", "body_en"]
        widgets = {"subject_de": PlaceholderTextInput, "subject_en": PlaceholderTextInput,
                   "body_de": PlaceholderTextarea, "body_en": PlaceholderTextarea}

    def clean(self):
        cleaned = super().clean()
        for name in ("subject_de", "body_de", "subject_en", "body_en"):
            try:
                rendering.template_validate(cleaned.get(name) or "")
            except InvalidTemplate as error:
                self.add_error(name, str(error))
        return cleaned


class VariantFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """A raffle's texts must carry the entry link (checked on save, again at launch)."""
        super().clean()
        if getattr(self.instance, "kind", None) != Campaign.Kind.RAFFLE:
            return
        for form in self.forms:
            cleaned = getattr(form, "cleaned_data", None)
            if not cleaned or cleaned.get("DELETE"):
                continue
            for name in ("body_de", "body_en"):
                text = cleaned.get(name) or ""
                if (name == "body_de" or text.strip()) and not rendering.shows_value(text, rendering.RAFFLE_LINK):
                    form.add_error(name, rendering.raffle_link_missing_text())


class VariantInline(StackedInline):
    model = Variant
    form = VariantForm
    formset = VariantFormSet
    extra = 0
    min_num = 1
    fields = ["name", "weight", "subject_de", "body_de", "subject_en", "body_en"]

    def has_add_permission(self, request, obj=None):
        return _editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _editable(obj) and super().has_delete_permission(request, obj)


def _finished(campaign: Campaign | None) -> bool:
    """A finished or cancelled campaign: nothing to edit, start, pause or stop any more (a raffle
    whose messages are out stays open, its deadline movable, until its winners are drawn)."""
    if campaign is None:
        return False
    if campaign.status == Campaign.Status.CANCELLED:
        return True
    open_raffle = campaign.kind == Campaign.Kind.RAFFLE and campaign.drawn_at is None
    return campaign.status == Campaign.Status.DONE and not open_raffle


def _editable(campaign: Campaign | None) -> bool:
    """Texts, audience and arms are fixed once a campaign has started: results stay comparable."""
    return campaign is None or campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["name", "kind", "channel", "segment", "scheduled_at", "trigger", "trigger_days", "trigger_points",
                  "holdout_percent", "attribution_days", "bonus_points", "reward", "entry_points", "entry_deadline",
                  "winners_count", "prize"]

    def clean(self):
        cleaned = super().clean()
        kind, trigger = cleaned.get("kind"), cleaned.get("trigger")
        if kind == Campaign.Kind.TRIGGERED and not trigger:
            self.add_error("trigger", _("A triggered campaign needs its trigger."))
        if kind != Campaign.Kind.TRIGGERED and trigger:
            self.add_error("trigger", _("Only triggered campaigns have a trigger."))
        needs_days = (Campaign.Trigger.AFTER_PURCHASE, Campaign.Trigger.INACTIVITY)
        if trigger in needs_days and not cleaned.get("trigger_days"):
            self.add_error("trigger_days", _("This trigger needs the number of days."))
        if trigger == Campaign.Trigger.POINTS_MILESTONE and not cleaned.get("trigger_points"):
            self.add_error("trigger_points", _("This trigger needs the milestone in points."))
        if (cleaned.get("holdout_percent") or 0) > 90:
            self.add_error("holdout_percent", _("At most 90 %."))
        if cleaned.get("channel") == Campaign.Channel.PUSH and not push_configured():
            self.add_error("channel", push_not_configured_text())
        if (kind or self.instance.kind) == Campaign.Kind.RAFFLE:  # read-only once started: not in the form
            self._clean_raffle(cleaned)
        return cleaned

    def _clean_raffle(self, cleaned: dict) -> None:
        deadline = cleaned.get("entry_deadline")
        if "entry_deadline" in self.fields and deadline is None:
            self.add_error("entry_deadline", _("A raffle needs an entry deadline: its seed is published before it."))
        started = self.instance.pk and not _editable(self.instance)
        if started and "entry_deadline" in self.changed_data and deadline is not None:
            if self.instance.drawn_at is not None:
                self.add_error("entry_deadline", _("The winners have been drawn: the deadline is fixed."))
            elif deadline <= timezone.now():
                self.add_error("entry_deadline", _("Entries can only be closed at a time in the future."))


ACTIONS = {
    # name: (service, title, explanation, permission)
    "launch": (services.campaign_launch, _("Start the campaign"),
               _("A broadcast is sent now (or at its time, if one is set); a triggered campaign becomes active. "
                 "Consent and the frequency cap are checked for every member when their message is sent."),
               "send"),
    "pause": (services.campaign_pause, _("Pause"), _("Batches still waiting stop; nothing is lost."), "send"),
    "resume": (services.campaign_resume, _("Resume"), _("Sending continues where it stopped."), "send"),
    "stop": (services.campaign_stop, _("Stop"),
             _("Messages not sent yet are skipped. A broadcast is cancelled, a triggered campaign ends."), "send"),
    "retry": (services.messages_retry_failed, _("Retry failed messages"),
              _("Failed messages are queued again. Messages marked 'interrupted' may have reached the member "
                "already: retrying them can send a second copy."), "send"),
    "draw": (raffles.raffle_draw, _("Draw the winners"),
             _("The seed whose hash was published when the raffle opened is revealed, the tickets are "
               "fingerprinted and the winners computed from both, so anyone can check the draw on the raffle's "
               "public page. Prize vouchers are issued at once and the winners are told by e-mail."), "draw"),
    "test_send": (sending.messages_send_to_self, _("Send a test to yourself"),
                  _("Each variant is rendered with sample member values (Erika Mustermann) and e-mailed only to "
                    "your own address, never to members."), "test_send"),
}


def _warn_if_stalled(request, text: str | None) -> None:
    """A stalled send is shown where staff look at the campaign, not only in /healthz."""
    if text:
        messages.warning(request, text)


@admin.register(Campaign)
class CampaignAdmin(ModelAdmin):
    form = CampaignForm
    list_display = ["name", "kind", "trigger", "channel", "status", "progress", "scheduled_at", "started_at"]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["name"]
    autocomplete_fields = ["segment"]
    raw_id_fields = ["reward", "prize"]
    inlines = [VariantInline]
    # Results first, before the form: on a started campaign they are what staff come for.
    change_form_outer_before_template = "admin/campaigns/campaign/results.html"
    change_form_after_template = "admin/campaigns/campaign/previews.html"
    actions_detail = ["launch_action", "pause_action", "resume_action", "stop_action", "retry_action",
                      "draw_action", "test_send_action"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "channel", "segment", "scheduled_at"]}),
        (_("Trigger"), {"fields": ["trigger", "trigger_days", "trigger_points"],
                        "description": _("Only for triggered campaigns.")}),
        (_("Measurement"), {"fields": ["holdout_percent", "attribution_days"]}),
        (_("Incentive (once per message)"), {"fields": ["bonus_points", "reward"]}),
        (_("Raffle"), {"fields": ["entry_points", "entry_deadline", "winners_count", "prize", "draw_seed_hash",
                                  "seed_committed_at", "drawn_at", "revealed_seed", "draw_entries_hash"],
                       "description": _("Only for raffles. The seed is drawn when the raffle is started and only "
                                        "its hash is shown until the draw.")}),
        (_("Status"), {"fields": ["status", "started_at", "prepared_at", "finished_at", "created_by"]}),
    ]

    class Media:
        js = ["console/placeholder_picker.js"]

    base_readonly = ["status", "started_at", "prepared_at", "finished_at", "created_by", "drawn_at",
                     "draw_seed_hash", "seed_committed_at", "revealed_seed", "draw_entries_hash"]

    def get_readonly_fields(self, request, obj=None):
        if _editable(obj):
            return self.base_readonly
        every = [name for fieldset in self.fieldsets for name in fieldset[1]["fields"]]
        if _finished(obj):
            return every
        # Started: everything is fixed but the name and the raffle's deadline and prize.
        editable = {"name"}
        if obj.kind == Campaign.Kind.RAFFLE and obj.drawn_at is None:
            # The deadline may move (not into the past, see the form); the number of winners is
            # part of the published rules and stays.
            editable |= {"entry_deadline", "prize"}
        return [name for name in every if name not in editable]

    def has_change_permission(self, request, obj=None):
        # A finished campaign is a record: its page has no form fields and no save buttons.
        return not _finished(obj) and super().has_change_permission(request, obj)

    def get_actions_detail(self, request, object_id):
        """Only the actions that still make sense for the campaign as it stands."""
        actions = super().get_actions_detail(request, object_id)
        campaign = Campaign.objects.filter(pk=object_id).first()
        if campaign is None:
            return actions
        if _finished(campaign):
            hidden = {"launch_action", "pause_action", "resume_action", "stop_action", "test_send_action"}
        elif _editable(campaign):
            hidden = {"pause_action", "resume_action", "retry_action", "draw_action"}
        else:
            hidden = {"launch_action", "test_send_action"}
        if campaign.kind != Campaign.Kind.RAFFLE:
            hidden.add("draw_action")
        return [item for item in actions if item.action_name.removeprefix("campaigns_campaign_") not in hidden]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("segment")

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            _warn_if_stalled(request, stalls.campaigns_stalled_text())
        return super().changelist_view(request, extra_context)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        ids = [campaign.pk for campaign in changelist.result_list]
        self._progress = selectors.campaign_progress_by_id(ids)
        return changelist

    @display(description=_("seed"))
    def revealed_seed(self, obj: Campaign) -> str:
        """The seed stays secret until the draw: only its hash is published before."""
        if obj.drawn_at is not None:
            return obj.draw_seed
        return str(_("revealed at the draw")) if obj.draw_seed_hash else "–"

    @display(description=_("sent / total"))
    def progress(self, obj: Campaign) -> str:
        row = getattr(self, "_progress", {}).get(obj.pk)
        if not row:
            return "–"
        return f"{row['sent']:,} / {row['total']:,}".replace(",", ".")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            _warn_if_stalled(request, stalls.campaign_stall_text(campaign))
            extra_context["results"] = selectors.campaign_results(campaign)
            extra_context["started"] = not _editable(campaign)
            extra_context["problems"] = services.campaign_problems(campaign) if _editable(campaign) else []
            extra_context["previews"] = _previews(campaign)
            if campaign.kind == Campaign.Kind.RAFFLE:
                extra_context["raffle"] = {
                    "entries": campaign.raffle_entries.count(),
                    "winners": list(campaign.raffle_entries.filter(won=True).select_related("member", "prize")
                                    .order_by("pk")),
                    "verified": selectors.raffle_verify(campaign) if campaign.drawn_at else None,
                    "draw_problem": raffles.raffle_draw_problem(campaign, timezone.now()),
                    "public_url": reverse("campaigns:raffle_proof", args=[campaign.pk]),
                    "may_draw": request.user.has_perm("campaigns.draw_raffle"),
                }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- Actions: a confirmation page, then the service ----------------------------------------

    def get_urls(self):
        return [
            path("<int:object_id>/do/<str:name>/", self.admin_site.admin_view(self.confirm_view),
                 name="campaigns_campaign_do"),
            *super().get_urls(),
        ]

    def has_send_permission(self, request, object_id=None):
        return request.user.has_perm("campaigns.send_campaign")

    def has_test_send_permission(self, request, object_id=None):
        return request.user.has_perm("campaigns.change_campaign")

    def has_draw_permission(self, request, object_id=None):
        return request.user.has_perm("campaigns.draw_raffle")

    def _go(self, name, object_id):
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_do", args=[object_id, name]))

    @action(description=_("Start"), url_path="launch-action", permissions=["send"])
    def launch_action(self, request, object_id):
        return self._go("launch", object_id)

    @action(description=_("Pause"), url_path="pause-action", permissions=["send"])
    def pause_action(self, request, object_id):
        return self._go("pause", object_id)

    @action(description=_("Resume"), url_path="resume-action", permissions=["send"])
    def resume_action(self, request, object_id):
        return self._go("resume", object_id)

    @action(description=_("Stop"), url_path="stop-action", permissions=["send"])
    def stop_action(self, request, object_id):
        return self._go("stop", object_id)

    @action(description=_("Retry failed"), url_path="retry-action", permissions=["send"])
    def retry_action(self, request, object_id):
        return self._go("retry", object_id)

    @action(description=_("Draw winners"), url_path="draw-action", permissions=["draw"])
    def draw_action(self, request, object_id):
        return self._go("draw", object_id)

    @action(description=_("Test to myself"), url_path="test-send-action", permissions=["test_send"])
    def test_send_action(self, request, object_id):
        return self._go("test_send", object_id)

    def confirm_view(self, request, object_id, name):
        if name not in ACTIONS:
            raise PermissionDenied
        service, title, explanation, permission = ACTIONS[name]
        if not getattr(self, f"has_{permission}_permission")(request):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=object_id)
        if request.method == "POST":
            try:
                outcome = service(campaign_id=campaign.pk, staff_user=request.user)
            except LoyaltyError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _done_text(name, title, outcome, request.user), messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        if name == "test_send":
            explanation = _test_send_explanation(explanation, request.user)
        context = {**self.admin_site.each_context(request), "title": title, "explanation": explanation,
                   "campaign": campaign, "form": None, "opts": self.model._meta,
                   "original": campaign}
        return TemplateResponse(request, "admin/campaigns/campaign/confirm.html", context)


def _done_text(name: str, title, outcome, user) -> str:
    if name == "test_send":
        return ngettext("%(count)s test e-mail sent to %(address)s.", "%(count)s test e-mails sent to %(address)s.",
                        outcome) % {"count": outcome, "address": user.email}
    return _("%(action)s: done.") % {"action": title}


def _test_send_explanation(explanation, user) -> str:
    if not user.email:
        return str(TestAddressMissing())
    return _("%(explanation)s Address: %(address)s") % {"explanation": explanation, "address": user.email}


def _previews(campaign: Campaign) -> list[dict]:
    """Each variant rendered for one member of the audience (German and English)."""
    from members.models import Member

    try:
        sample = segment_queryset(campaign.segment).select_related("tier").order_by("pk").first()
    except LoyaltyError:
        return []
    if sample is None:
        return []
    previews = []
    for variant in campaign.variants.order_by("pk"):
        for language in ("de", "en"):
            member = Member(**{f.attname: getattr(sample, f.attname) for f in Member._meta.concrete_fields})
            member.language = language
            message = Message(pk=0, campaign=campaign, member=member, variant=variant, channel=campaign.channel,
                              bonus_points=campaign.bonus_points or 0)
            try:
                subject, body = sending.message_render(message, member)
            except LoyaltyError as error:
                subject, body = "", str(error)
            previews.append({"variant": variant.name, "language": language, "subject": subject, "body": body,
                             "preview_line": rendering.preview_line(body)})
    return previews


# --- Records ----------------------------------------------------------------------------------


class ReadOnlyAdmin(ReadOnlyAdminMixin, ModelAdmin):
    pass


@admin.register(Message)
class MessageAdmin(MemberNumberSearchMixin, ReadOnlyAdmin):
    list_display = ["campaign", "member", "occurrence", "variant", "is_control", "status", "skip_reason",
                    "to_address", "processed_at"]
    list_select_related = ["campaign", "member", "variant"]
    list_filter = ["status", "skip_reason", "channel", "is_control", "campaign"]
    search_fields = ["=member__customer_number", "=member__card_number"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-id"]
    raw_id_fields = ["member", "redemption"]


@admin.register(RaffleEntry)
class RaffleEntryAdmin(MemberNumberSearchMixin, ReadOnlyAdmin):
    list_display = ["campaign", "member", "points_paid", "created_at", "won", "prize"]
    list_select_related = ["campaign", "member", "prize"]
    list_filter = ["won", "campaign"]
    search_fields = ["=member__customer_number"]
    show_full_result_count = False
