"""The operator console for members: the 360° view and the actions staff take on a member.

Every change goes through a service; balances and counters are read-only here, and the ledger is
never editable. rewards/admin_members.py extends this admin with the points side (the 360° overview,
adjust points, override tier): members imports no rewards.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from core.admin_utils import EstimatedCountPaginator, MemberNumberSearchMixin, ReadOnlyAdminMixin, member_number_lookup
from core.errors import LoyaltyError
from transfers.admin import ExportActionsMixin, ImportButtonMixin

from . import erasure, gdpr, services
from .forms_admin import EraseMemberForm, ExportMemberDataForm, MergeForm
from .merge import member_merge
from .models import ConsentRecord, Member, MemberMerge, PrivacyRequest, Tag, Tier, TierHistory
from .views import privacy_export_response


class EmailConsentFilter(admin.SimpleListFilter):
    title = _("e-mail marketing consent")
    parameter_name = "email_consent"

    def lookups(self, request, model_admin):
        return [("yes", _("given and confirmed")), ("no", _("not given"))]

    def queryset(self, request, queryset):
        # Two levels down (Member -> Exists -> Subquery): a single OuterRef would name the consent
        # record of the Exists, not the member, and every member matched "yes".
        latest = ConsentRecord.objects.filter(
            member=OuterRef(OuterRef("pk")), purpose=ConsentRecord.Purpose.EMAIL).order_by("-created_at", "-id")
        effective = Exists(
            ConsentRecord.objects.filter(pk=Subquery(latest.values("pk")[:1]), granted=True, confirmed_at__isnull=False)
        )
        if self.value() == "yes":
            return queryset.filter(effective)
        if self.value() == "no":
            return queryset.exclude(effective)
        return queryset


class CountryFilter(admin.SimpleListFilter):
    """Fixed choices: the default filter runs SELECT DISTINCT over the whole table on every page."""

    title = _("country")
    parameter_name = "country"

    def lookups(self, request, model_admin):
        return [("DE", _("Germany")), ("AT", _("Austria")), ("CH", _("Switzerland")), ("other", _("other"))]

    def queryset(self, request, queryset):
        if self.value() == "other":
            return queryset.exclude(country__in=["DE", "AT", "CH"])
        if self.value():
            return queryset.filter(country=self.value())
        return queryset


def member_search_filter(term: str) -> Q:
    """What staff type, mapped to lookups that use an index: a card number (digits), a customer
    number (a letter and digits), an e-mail fragment, or a name fragment (trigram indexes)."""
    term = term.strip()
    number = member_number_lookup(term)
    if number is not None:
        return Q(**number)
    if "@" in term or "." in term:
        return Q(email__icontains=term)
    return Q(last_name__icontains=term) | Q(first_name__icontains=term) | Q(email__icontains=term)


@admin.register(Member)
class MemberAdmin(ExportActionsMixin, ImportButtonMixin, ModelAdmin):
    export_kind = import_kind = "members"  # transfers.admin: export actions, "Import a file" button
    list_display = ["customer_number", "display_name", "email", "tier", "status", "points_balance", "points_pending",
                    "country", "joined_at"]
    list_select_related = ["tier"]
    list_filter = ["tier", "status", EmailConsentFilter, CountryFilter, ("joined_at", admin.DateFieldListFilter)]
    search_fields = ["customer_number"]  # enables the box; get_search_results does the real matching
    search_help_text = _("Name, e-mail, customer number or card number")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 25
    ordering = ["-joined_at", "-id"]
    autocomplete_fields = ["tags"]
    readonly_fields = ["customer_number", "card_number", "points_balance", "points_pending", "tier",
                       "tier_granted_until", "status", "merged_into", "last_purchase_at", "purchases_12m", "spend_12m",
                       "lifetime_spend", "joined_at", "user", "created_at", "updated_at", "email_confirmed"]
    fieldsets = [
        (None, {"fields": ["customer_number", "card_number", "status", "merged_into"]}),
        (_("Person"), {"fields": ["salutation", "first_name", "last_name", "email", "email_confirmed", "phone",
                                  "birth_date", "language", "tags"]}),
        (_("Address"), {"fields": ["street", "postal_code", "city", "country"]}),
        (_("Points and tier"), {"fields": ["points_balance", "points_pending", "tier", "tier_granted_until"]}),
        (_("Purchases"), {"fields": ["last_purchase_at", "purchases_12m", "spend_12m", "lifetime_spend"]}),
        (_("Account"), {"fields": ["joined_at", "user", "created_at", "updated_at"]}),
    ]
    change_form_before_template = "admin/members/member/overview.html"
    # rewards/admin_members.py adds the points actions (adjust points, override tier) and the 360° overview.
    actions_detail = ["merge_action", "block_action", "unblock_action", "export_data_action", "erase_action"]

    def has_add_permission(self, request):
        return False  # members enrol through the portal, a till, the API or an import

    def has_delete_permission(self, request, obj=None):
        return False  # erasure is a GDPR flow that keeps the ledger consistent, not a delete

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "email" in form.changed_data:
            # An address typed in by staff must be confirmed by its owner before a portal
            # sign-up can claim this member (members.services, "E-mail addresses set by staff").
            services.member_email_changed_by_staff(member_id=obj.pk)
            obj.email_confirmed = False
            if obj.email:
                self.message_user(request, _("A confirmation link was sent to %(email)s: a portal account can only "
                                             "take over this member once the address is confirmed.")
                                  % {"email": obj.email}, messages.INFO)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(member_search_filter(search_term)), False

    @display(description=_("name"), ordering="last_name")
    def display_name(self, obj: Member) -> str:
        return obj.full_name

    # --- Actions on one member: each opens a form page and calls a service ---------------

    def get_urls(self):
        urls = [
            path("<int:object_id>/merge/", self.admin_site.admin_view(self.merge_view),
                 name="members_member_merge"),
            path("<int:object_id>/export-data/", self.admin_site.admin_view(self.export_data_view),
                 name="members_member_export_data"),
            path("<int:object_id>/erase/", self.admin_site.admin_view(self.erase_view),
                 name="members_member_erase"),
        ]
        return urls + super().get_urls()

    def _change_url(self, member_id: int) -> str:
        return reverse("admin:members_member_change", args=[member_id])

    @action(description=_("Merge a duplicate into this member"), url_path="merge-action", permissions=["merge"])
    def merge_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_merge", args=[object_id]))

    @action(description=_("Block"), url_path="block-action", permissions=["block"])
    def block_action(self, request, object_id):
        return self._set_status(request, object_id, Member.Status.BLOCKED)

    @action(description=_("Unblock"), url_path="unblock-action", permissions=["block"])
    def unblock_action(self, request, object_id):
        return self._set_status(request, object_id, Member.Status.ACTIVE)

    @action(description=_("Export personal data (Art. 15)"), url_path="export-data-action",
            permissions=["export_member_data"])
    def export_data_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_export_data", args=[object_id]))

    @action(description=_("Erase (Art. 17)"), url_path="erase-action", permissions=["erase_member"])
    def erase_action(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:members_member_erase", args=[object_id]))

    def has_export_member_data_permission(self, request, object_id=None):
        return request.user.has_perm("members.export_member_data")

    def has_erase_member_permission(self, request, object_id=None):
        return request.user.has_perm("members.erase_member")

    def has_merge_permission(self, request, object_id=None):
        return request.user.has_perm("members.merge_members")

    def has_block_permission(self, request, object_id=None):
        return request.user.has_perm("members.block_member")

    def _set_status(self, request, object_id, status):
        try:
            services.member_set_status(member_id=int(object_id), status=status, staff_user=request.user)
            self.message_user(request, _("Status changed to %(status)s.") % {"status": Member.Status(status).label})
        except LoyaltyError as error:
            self.message_user(request, str(error), messages.ERROR)
        return HttpResponseRedirect(self._change_url(object_id))

    def _form_page(self, request, member, form, title, service_call):
        if request.method == "POST" and form.is_valid():
            try:
                message = service_call(form.cleaned_data)
            except LoyaltyError as error:
                form.add_error(None, str(error))
            else:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(member.pk))
        context = {**self.admin_site.each_context(request), "title": title, "member": member, "form": form,
                   "opts": self.model._meta, "original": member}
        return TemplateResponse(request, "admin/members/member/action_form.html", context)

    def merge_view(self, request, object_id):
        if not self.has_merge_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=object_id)
        form = MergeForm(request.POST or None, survivor=member)

        def merge(data):
            outcome = member_merge(survivor_id=member.pk, duplicate_id=data["duplicate"].pk,
                                   reason=data["reason"], staff_user=request.user)
            return _("%(duplicate)s merged into this member (%(points)s points moved).") % {
                "duplicate": data["duplicate"], "points": outcome.merge.points_moved}

        return self._form_page(request, member, form, _("Merge a duplicate"), merge)

    # --- Data protection requests: the same services as the portal, for members without a login ---

    def _privacy_page(self, request, member, form, *, title: str, template: str, **context):
        context = {**self.admin_site.each_context(request), "title": title, "member": member, "form": form,
                   "opts": self.model._meta, "original": member, **context}
        return TemplateResponse(request, template, context)

    def export_data_view(self, request, object_id):
        if not self.has_export_member_data_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member.objects.exclude(status=Member.Status.ERASED), pk=object_id)
        form = ExportMemberDataForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = gdpr.member_export(member_id=member.pk, channel=PrivacyRequest.Channel.CONSOLE,
                                          staff_user=request.user)
            return privacy_export_response(data, member)
        return self._privacy_page(request, member, form, title=_("Export personal data"),
                                  template="admin/members/member/privacy_export.html")

    def erase_view(self, request, object_id):
        if not self.has_erase_member_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member.objects.exclude(status=Member.Status.ERASED), pk=object_id)
        form = EraseMemberForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            erasure.member_erase(member_id=member.pk, channel=PrivacyRequest.Channel.CONSOLE, staff_user=request.user)
            self.message_user(request, _("Member #%(id)s has been erased.") % {"id": member.pk}, messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(member.pk))
        return self._privacy_page(request, member, form, title=_("Erase member"),
                                  template="admin/members/member/privacy_erase.html",
                                  merged=member.merged_members.count(), **self.erase_page_facts(member))

    def erase_page_facts(self, member: Member) -> dict:
        """What else the erase page tells staff will happen (rewards adds the open vouchers)."""
        return {}


@admin.register(Tier)
class TierAdmin(ModelAdmin):
    list_display = ["name_de", "name_en", "rank", "kind", "threshold_points", "fee_amount", "fee_currency",
                    "duration_months", "earn_multiplier", "discount_percent"]
    list_filter = ["kind"]
    ordering = ["rank"]
    fieldsets = [
        (None, {"fields": ["name_de", "name_en", "rank", "kind"]}),
        (_("Reached by points"), {"fields": ["threshold_points"]}),
        (_("Paid membership"), {"fields": ["fee_amount", "fee_currency", "duration_months"],
                                "description": _("Only for a paid tier (VIP): the yearly fee, recorded as a "
                                                 "purchase, and how long a membership runs.")}),
        (_("Benefits"), {"fields": ["earn_multiplier", "discount_percent", "benefits_de", "benefits_en"]}),
    ]


@admin.register(Tag)
class TagAdmin(ModelAdmin):
    search_fields = ["name"]


class ReadOnlyAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Proof records: staff read them, nobody edits or deletes them here."""


@admin.register(ConsentRecord)
class ConsentRecordAdmin(MemberNumberSearchMixin, ReadOnlyAdmin):
    list_display = ["member", "purpose", "granted", "source", "text_version", "confirmed_at", "created_at"]
    list_select_related = ["member"]
    list_filter = ["purpose", "granted", "source"]
    search_fields = ["=member__customer_number", "member__email"]
    show_full_result_count = False


@admin.register(TierHistory)
class TierHistoryAdmin(MemberNumberSearchMixin, ReadOnlyAdmin):
    list_display = ["member", "from_tier", "to_tier", "cause", "reason", "created_by", "created_at"]
    list_select_related = ["member", "from_tier", "to_tier", "created_by"]
    list_filter = ["cause", "to_tier"]
    search_fields = ["=member__customer_number"]
    show_full_result_count = False


@admin.register(MemberMerge)
class MemberMergeAdmin(ReadOnlyAdmin):
    list_display = ["survivor", "duplicate", "points_moved", "purchases_moved", "created_by", "created_at"]
    list_select_related = ["survivor", "duplicate", "created_by"]


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(ReadOnlyAdmin):
    """Who exported or erased which member, when and how: proof of the requests handled."""

    list_display = ["created_at", "kind", "channel", "member_id", "staff_user", "partner"]
    list_select_related = ["staff_user", "partner"]
    list_filter = ["kind", "channel"]
    search_fields = ["=member__id"]
    show_full_result_count = False
