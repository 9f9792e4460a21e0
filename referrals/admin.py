"""The console for referral programmes and referrals.

- Programmes: the settings, and per programme its referrals, conversion rate, rewards paid and
  top referrers (annotations and one grouped query: no query per row).
- Referrals are records: nobody edits a status by hand. Approving and rejecting a flagged
  referral are actions with a confirmation page (a POST) that call `referrals.services`; the
  review queue is the list filtered by "waiting for review". Staff can enter a code for a
  member who forgot to give it ("Enter a referral code").
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from core.admin_utils import EstimatedCountPaginator, MemberNumberSearchMixin, ReadOnlyAdminMixin
from core.errors import LoyaltyError
from members.models import Member

from . import selectors, services
from .models import Referral, ReferralCode, ReferralProgram


@admin.register(ReferralProgram)
class ReferralProgramAdmin(ModelAdmin):
    list_display = ["name_de", "active", "valid_from", "valid_until", "qualifying_event", "referrals",
                    "conversion", "rewarded", "paid", "in_review"]
    list_filter = ["active", "qualifying_event"]
    search_fields = ["name_de", "name_en"]
    raw_id_fields = ["referrer_reward", "referee_reward"]
    change_form_after_template = "admin/referrals/referralprogram/stats.html"
    fieldsets = [
        (None, {"fields": ["name_de", "name_en", "active", "valid_from", "valid_until"]}),
        (_("Rewards"), {"fields": ["referrer_points", "referrer_reward", "referee_points", "referee_reward"],
                        "description": _("Points, a voucher, or both, for each side.")}),
        (_("Qualification"), {"fields": ["qualifying_event", "min_purchase_amount", "attribution_days",
                                         "hold_days"]}),
        (_("Limits and fraud checks"), {"fields": ["yearly_cap", "weekly_review_threshold"]}),
        (_("Texts for members"), {"fields": ["conditions_de", "conditions_en"]}),
    ]

    def get_queryset(self, request):
        return selectors.programs_with_stats(super().get_queryset(request))

    @display(description=_("referrals"), ordering="referral_count")
    def referrals(self, obj):
        return obj.referral_count

    @display(description=_("conversion"))
    def conversion(self, obj):
        rate = selectors.conversion_rate(obj)
        return "–" if rate is None else f"{rate:.1f} %".replace(".", ",")

    @display(description=_("rewarded"), ordering="rewarded_count")
    def rewarded(self, obj):
        return obj.rewarded_count

    @display(description=_("points paid"), ordering="points_paid")
    def paid(self, obj):
        return obj.points_paid

    @display(description=_("waiting for review"), ordering="review_count")
    def in_review(self, obj):
        return obj.review_count

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        program = selectors.programs_with_stats().filter(pk=object_id).first()
        if program is not None:
            extra_context["stats"] = {
                "program": program, "conversion": selectors.conversion_rate(program),
                "statuses": selectors.status_counts(program), "top": selectors.top_referrers(program),
            }
        return super().change_view(request, object_id, form_url, extra_context)


class ReviewFilter(admin.SimpleListFilter):
    title = _("review")
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("waiting", _("waiting for review")), ("reviewed", _("reviewed by staff")),
                ("flagged", _("flagged (any state)"))]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.awaiting_review()
        if self.value() == "reviewed":
            return queryset.filter(reviewed_at__isnull=False)
        if self.value() == "flagged":
            return queryset.exclude(review_reasons=[])
        return queryset


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=500, widget=UnfoldAdminTextareaWidget,
                             help_text=_("Kept with the referral."))


class EnterCodeForm(forms.Form):
    member = forms.CharField(label=_("new member"), max_length=254, widget=UnfoldAdminTextInputWidget,
                             help_text=_("Card number, customer number or e-mail of the referred friend."))
    code = forms.CharField(label=_("referral code"), max_length=20, widget=UnfoldAdminTextInputWidget,
                           help_text=_("The code of the member who recommended us."))

    def clean_member(self) -> Member:
        found = list(Member.objects.find(self.cleaned_data["member"]).exclude(status=Member.Status.ERASED)[:2])
        if len(found) != 1:
            raise forms.ValidationError(_("No single member matches."))
        return found[0]


REVIEW_ACTIONS = {
    "approve": (_("Approve referral"),
                _("The referral goes on as if nothing had been found; if it is due, both sides are paid now.")),
    "reject": (_("Reject referral"), _("The referral is closed with your reason. Nobody is paid for it.")),
}


@admin.register(Referral)
class ReferralAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["created_at", "program", "referrer", "referee", "status", "review", "channel", "qualified_at",
                    "rewarded_at", "paid"]
    list_select_related = ["program", "referrer", "referee"]
    list_filter = [ReviewFilter, "status", "channel", "program", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=code", "=referrer__customer_number", "=referrer__card_number", "=referee__customer_number",
                     "=referee__card_number"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-id"]
    readonly_fields = ["program", "referrer", "referee", "code", "channel", "status", "review_reasons_text",
                       "started_at", "created_at", "qualified_at", "payable_at", "rewarded_at", "rejected_at",
                       "expired_at", "reject_reason", "reviewed_at", "reviewed_by", "qualifying_purchase",
                       "referrer_points", "referee_points", "referrer_voucher", "referee_voucher", "referrer_capped",
                       "created_by"]
    fields = readonly_fields
    actions_detail = ["approve_action", "reject_action"]
    actions_row = ["approve_action", "reject_action"]
    actions_list = ["enter_code_action"]  # referrals are added there, through the service

    def search_exact_filter(self, field_path, values):
        if field_path == "code":  # the code used is the referrer's own code, indexed in ReferralCode
            owners = ReferralCode.objects.filter(code__in=values).values_list("member_id", flat=True)
            return Q(referrer__in=list(owners))
        return super().search_exact_filter(field_path, values)

    def has_review_permission(self, request, object_id=None):
        return request.user.has_perm("referrals.review_referral")

    def has_enter_permission(self, request, object_id=None):
        return request.user.has_perm("referrals.add_referral")

    @display(description=_("review"))
    def review(self, obj: Referral) -> str:
        if not obj.review_reasons:
            return "–"
        return _("approved") if obj.reviewed_at else _("waiting")

    @display(description=_("review reasons"))
    def review_reasons_text(self, obj: Referral) -> str:
        return "; ".join(obj.review_reason_labels()) or "–"

    @display(description=_("paid (points)"))
    def paid(self, obj: Referral) -> str:
        if obj.status != Referral.Status.REWARDED:
            return "–"
        return f"{obj.referrer_points} / {obj.referee_points}"

    # --- Actions: a confirmation page, then the service ----------------------------------------

    def get_urls(self):
        return [
            path("enter-code/", self.admin_site.admin_view(self.enter_code_view), name="referrals_referral_enter"),
            path("<int:object_id>/review/<str:name>/", self.admin_site.admin_view(self.review_view),
                 name="referrals_referral_review"),
            *super().get_urls(),
        ]

    def _go(self, name, object_id):
        return HttpResponseRedirect(reverse("admin:referrals_referral_review", args=[object_id, name]))

    @action(description=_("Approve"), url_path="approve-action", permissions=["review"])
    def approve_action(self, request, object_id):
        return self._go("approve", object_id)

    @action(description=_("Reject"), url_path="reject-action", permissions=["review"])
    def reject_action(self, request, object_id):
        return self._go("reject", object_id)

    @action(description=_("Enter a referral code"), url_path="enter-code-action", permissions=["enter"])
    def enter_code_action(self, request):
        return HttpResponseRedirect(reverse("admin:referrals_referral_enter"))

    def review_view(self, request, object_id, name):
        if name not in REVIEW_ACTIONS or not self.has_review_permission(request):
            raise PermissionDenied
        title, explanation = REVIEW_ACTIONS[name]
        referral = get_object_or_404(Referral.objects.select_related("referrer", "referee", "program"), pk=object_id)
        form = RejectForm(request.POST or None) if name == "reject" else None
        if request.method == "POST" and (form is None or form.is_valid()):
            try:
                if name == "approve":
                    referral = services.referral_approve(referral_id=referral.pk, staff_user=request.user)
                else:
                    services.referral_reject(referral_id=referral.pk, reason=form.cleaned_data["reason"],
                                             staff_user=request.user)
            except LoyaltyError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _("%(action)s: done.") % {"action": title}, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:referrals_referral_change", args=[referral.pk]))
        context = {**self.admin_site.each_context(request), "title": title, "explanation": explanation,
                   "referral": referral, "form": form, "opts": self.model._meta, "original": referral}
        return TemplateResponse(request, "admin/referrals/referral/confirm.html", context)

    def enter_code_view(self, request):
        if not self.has_enter_permission(request):
            raise PermissionDenied
        form = EnterCodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                referral = services.referral_attach(referee_id=form.cleaned_data["member"].pk,
                                                    code=form.cleaned_data["code"], channel=Referral.Channel.STAFF,
                                                    staff_user=request.user)
            except LoyaltyError as error:
                form.add_error("code", str(error))
            else:
                self.message_user(request, _("The referral was recorded."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:referrals_referral_change", args=[referral.pk]))
        context = {**self.admin_site.each_context(request), "title": _("Enter a referral code"),
                   "explanation": _("For a member who was recommended by another member but did not give the "
                                    "code when joining. The usual checks apply."),
                   "referral": None, "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/referrals/referral/confirm.html", context)


