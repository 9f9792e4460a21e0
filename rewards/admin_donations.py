"""The console for donation causes and donations.

The cause list shows each cause's total in the chosen period (donations, points, euros) as
annotations of the list's one query (rewards.donations.causes_with_totals), and finance
exports the totals per cause and month (the payout) through transfers.exports, which checks
the permission and logs the export. Donations are read-only; reversing one is an action that
calls `donation_cancel` (the running month only: earlier months are paid out).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import admin, messages
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from core.admin_utils import EstimatedCountPaginator, MemberNumberSearchMixin, ReadOnlyAdminMixin, apply_each
from transfers import exports
from transfers.models import ExportLog

from . import donations
from .donations import Period, month_start
from .models import Donation, DonationCause


def _previous_month_start(at: datetime) -> datetime:
    return month_start(month_start(at) - timedelta(days=1))


def _year_start(at: datetime) -> datetime:
    return month_start(at).replace(month=1)


PERIODS = {
    "this_month": (_("This month"), lambda now: Period(start=month_start(now))),
    "last_month": (_("Last month"), lambda now: Period(start=_previous_month_start(now), end=month_start(now))),
    "this_year": (_("This year"), lambda now: Period(start=_year_start(now))),
    "last_year": (_("Last year"), lambda now: Period(start=_year_start(_year_start(now) - timedelta(days=1)),
                                                     end=_year_start(now))),
}


def period_of(request) -> Period:
    """The period the cause list and its export count (all time when none is chosen)."""
    choice = PERIODS.get(request.GET.get(PeriodFilter.parameter_name, ""))
    return choice[1](timezone.now()) if choice else Period()


class PeriodFilter(admin.SimpleListFilter):
    """Chooses the period the totals count; every cause stays in the list (with zero if it got nothing)."""

    title = _("period of the totals")
    parameter_name = "period"

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _period) in PERIODS.items()]

    def queryset(self, request, queryset):
        return queryset  # the period narrows the annotations (DonationCauseAdmin.get_queryset), not the causes


@admin.register(DonationCause)
class DonationCauseAdmin(ModelAdmin):
    list_display = ["name_de", "organisation", "active", "total_donations", "total_points", "total_amount"]
    list_filter = [PeriodFilter, "active"]
    search_fields = ["name_de", "name_en", "organisation"]
    fields = ["name_de", "name_en", "description_de", "description_en", "organisation", "website", "active"]
    actions = ["export_totals_csv"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        # One query for the list: the totals are annotations over the donations, not a query per cause.
        return donations.causes_with_totals(super().get_queryset(request), period=period_of(request))

    @admin.display(description=_("donations"), ordering="donation_count")
    def total_donations(self, obj):
        return obj.donation_count

    @admin.display(description=_("points donated"), ordering="donated_points")
    def total_points(self, obj):
        return obj.donated_points

    @admin.display(description=_("donated (EUR)"), ordering="donated_amount")
    def total_amount(self, obj):
        return obj.donated_amount

    def has_export_totals_permission(self, request):
        return exports.can_export(request.user, ExportLog.Kind.DONATION_TOTALS)

    @admin.action(description=_("Export the totals of the selected causes per month (CSV)"),
                  permissions=["export_totals"])
    def export_totals_csv(self, request, queryset):
        rows = donations.totals_per_cause_and_month(period=period_of(request),
                                                    cause_ids=list(queryset.values_list("pk", flat=True)))
        return exports.export_response(kind=ExportLog.Kind.DONATION_TOTALS, file_format="csv", queryset=rows,
                                       staff_user=request.user, filters=request.GET.urlencode())


@admin.register(Donation)
class DonationAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["created_at", "cause", "amount", "points", "member", "reward", "cancelled_at"]
    list_select_related = ["cause", "member", "reward"]
    list_filter = ["cause", ("cancelled_at", admin.EmptyFieldListFilter)]
    search_fields = ["=member__customer_number"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-id"]
    raw_id_fields = ["member"]
    actions = ["cancel_donations"]

    def has_cancel_permission(self, request):
        return request.user.has_perm("rewards.cancel_redemption")

    @admin.action(description=_("Cancel the selected donations and give their points back"), permissions=["cancel"])
    def cancel_donations(self, request, queryset):
        cancelled, refused = apply_each(queryset.values_list("pk", flat=True),
                                        lambda donation_id: donations.donation_cancel(donation_id=donation_id))
        if cancelled:
            self.message_user(request, _("%(count)s donation(s) cancelled, points and stock given back.")
                              % {"count": cancelled})
        if refused:
            self.message_user(request, _("%(count)s donation(s) were already cancelled or are of a month that "
                                         "is paid out, and stay as they are.") % {"count": refused},
                              messages.WARNING)
