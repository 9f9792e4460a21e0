"""The console for the ledger, purchases and earning rules.

Ledger rows are never editable or deletable, not even for a superuser: corrections are
new entries made through the member page's "adjust points" action.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline

from core.admin_utils import EstimatedCountPaginator, MemberNumberSearchMixin, ReadOnlyAdminMixin
from transfers.admin import ExportActionsMixin, ImportButtonMixin

from .models import (
    EarningRule,
    PointEntry,
    Purchase,
    PurchaseLine,
    PurchasePoints,
    PurchaseReturn,
    StoreDayTotal,
)
from .selectors import ledger_reference_sources, purchase_ids_with_order_reference
from .simulation import earning_rule_simulate


@admin.register(PointEntry)
class PointEntryAdmin(MemberNumberSearchMixin, ExportActionsMixin, ReadOnlyAdminMixin, ModelAdmin):
    export_kind = "ledger"  # transfers.admin
    list_display = ["created_at", "member", "kind", "points", "reason_shown", "expires_at", "source", "reference",
                    "created_by"]
    list_select_related = ["member", "created_by"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=member__customer_number", "=member__card_number", "=reference"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-id"]  # newest first along the primary key: no sort over millions of rows
    raw_id_fields = ["member", "purchase"]

    def search_exact_filter(self, field_path, values):
        if field_path == "reference":  # indexed only as the second column of (source, reference)
            return Q(source__in=ledger_reference_sources(), reference__in=values)
        return super().search_exact_filter(field_path, values)

    @admin.display(description=_("reason"))
    def reason_shown(self, entry: PointEntry) -> str:
        return entry.shown_reason  # in the console user's language, whoever wrote it


class PurchaseLineInline(ReadOnlyAdminMixin, TabularInline):
    model = PurchaseLine
    fields = ["sku", "category", "quantity", "amount", "points", "returned_amount", "points_reversed"]
    readonly_fields = fields
    extra = 0


class PurchasePointsInline(ReadOnlyAdminMixin, TabularInline):
    model = PurchasePoints
    fields = ["describe", "points"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("points breakdown")

    @admin.display(description=_("component"))
    def describe(self, obj):
        return obj.describe()


class PurchaseReturnInline(ReadOnlyAdminMixin, TabularInline):
    model = PurchaseReturn
    fields = ["reference", "amount", "points_reversed", "shortfall_points", "created_at"]
    readonly_fields = fields
    extra = 0


@admin.register(Purchase)
class PurchaseAdmin(MemberNumberSearchMixin, ExportActionsMixin, ImportButtonMixin, ReadOnlyAdminMixin, ModelAdmin):
    export_kind = import_kind = "purchases"  # transfers.admin
    list_display = ["occurred_at", "order_reference", "member", "partner", "store", "amount", "currency",
                    "points_earned", "points_reversed", "points_pending"]
    list_select_related = ["member", "partner", "store"]
    list_filter = ["currency", "channel", "partner", ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["=order_reference", "=member__customer_number", "=member__card_number"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-occurred_at", "-id"]
    inlines = [PurchasePointsInline, PurchaseLineInline, PurchaseReturnInline]
    raw_id_fields = ["member"]

    def search_exact_filter(self, field_path, values):
        if field_path == "order_reference":  # unique per partner: the index is (partner, order_reference)
            return Q(pk__in=purchase_ids_with_order_reference(values))
        return super().search_exact_filter(field_path, values)


class ShortfallFilter(admin.SimpleListFilter):
    title = _("shortfall")
    parameter_name = "shortfall"

    def lookups(self, request, model_admin):
        return [("yes", _("points already spent"))]

    def queryset(self, request, queryset):
        return queryset.filter(shortfall_points__gt=0) if self.value() == "yes" else queryset


@admin.register(StoreDayTotal)
class StoreDayTotalAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """What the tills counted per day, members or not (reported through the API)."""

    list_display = ["day", "store", "receipts", "revenue", "currency", "reported_at"]
    list_select_related = ["store"]
    list_filter = ["store__partner", "currency"]
    date_hierarchy = "day"


@admin.register(PurchaseReturn)
class PurchaseReturnAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Returns; the shortfall filter is staff's report of points members had already spent."""

    list_display = ["created_at", "reference", "purchase", "member", "amount", "points_reversed", "shortfall_points"]
    list_select_related = ["purchase__member"]
    list_filter = [ShortfallFilter]
    search_fields = ["=reference", "=purchase__order_reference", "=purchase__member__customer_number"]
    show_full_result_count = False

    def search_exact_filter(self, field_path, values):
        if field_path == "purchase__order_reference":  # the purchases first, through their unique index
            return Q(purchase__in=purchase_ids_with_order_reference(values))
        return super().search_exact_filter(field_path, values)

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.purchase.member


@admin.register(EarningRule)
class EarningRuleAdmin(ModelAdmin):
    list_display = ["name_de", "effect", "value", "currency", "min_amount", "active", "priority", "stackable",
                    "valid_from", "valid_until"]
    list_filter = ["active", "effect", "currency"]
    search_fields = ["name_de", "name_en"]
    filter_horizontal = ["stores"]
    fieldsets = [
        (None, {"fields": ["name_de", "name_en", "active", "priority", "effect", "value", "stackable"]}),
        (_("When"), {"fields": ["valid_from", "valid_until", "weekdays"]}),
        (_("Conditions"), {"fields": ["currency", "min_amount", "channel", "category", "stores", "tier"]}),
        (_("Cap"), {"fields": ["cap_points", "cap_period"]}),
    ]
    # Outside the rule's <form>: the change page's own GET form must not nest inside it.
    change_form_outer_after_template = "admin/rewards/earningrule/simulation.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        rule = self.get_object(request, object_id)
        if rule is not None:
            extra_context["simulation"] = earning_rule_simulate(rule=rule, days=_simulate_days(request.GET))
        return super().change_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and request.method == "POST" and "_simulate" in request.POST:
            return _simulating(form_class, days=_simulate_days(request.POST))
        return form_class

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if add:
            context.setdefault("simulation", getattr(context["adminform"].form, "simulation", None))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


def _simulating(form_class: type, *, days: int) -> type:
    """The add form for a "Simulate" click: it validates as usual and, when valid, simulates the
    unsaved rule it built (with the stores chosen in the form) instead of letting the admin save
    it. Reporting "not valid" without any error makes the admin show the form again, as posted,
    and never call save: nothing is written."""

    class SimulatingForm(form_class):
        simulation = None

        def is_valid(self) -> bool:
            if super().is_valid():
                stores = self.cleaned_data.get("stores", [])
                self.simulation = earning_rule_simulate(
                    rule=self.instance, days=days, store_ids=[store.pk for store in stores])
            return False

    return SimulatingForm


def _simulate_days(params) -> int:
    return _bounded_int(params.get("simulate_days"), default=30, low=1, high=365)


def _bounded_int(raw, *, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(raw)))
    except (TypeError, ValueError):
        return default


# --- Registered in their own modules: the catalogue, vouchers and stamp cards; the member page's
# points side (extends members' admin) ---------------------------------------------------------

from . import admin_catalogue, admin_donations, admin_members, admin_memberships, admin_programme  # noqa: E402, F401
