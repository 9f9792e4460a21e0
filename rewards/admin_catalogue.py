"""The console for the rewards catalogue, vouchers, stamp cards and cashback.

Safe to click: vouchers and stamp cards are read-only (their status and stamps change only
through the services), cancelling is an action that calls `redemption_cancel`, and a reward's
stock (a counter the services move) is changed by a relative amount through
`reward_stock_change`, never by saving a number the form read earlier.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from core.admin_utils import EstimatedCountPaginator, MemberNumberSearchMixin, ReadOnlyAdminMixin, apply_each
from transfers.admin import ExportActionsMixin, ImportButtonMixin

from . import codes, vouchers
from .models import CashbackProgram, Redemption, Reward, StampCard, StampCardProgram


class RewardForm(forms.ModelForm):
    unlimited_stock = forms.BooleanField(label=_("unlimited stock"), required=False)
    stock_change = forms.IntegerField(
        label=_("stock change"), required=False, initial=0, min_value=-1_000_000, max_value=1_000_000,
        help_text=_("Added to what is left now (negative: taken away). On an unlimited reward it sets the stock."))

    class Meta:
        model = Reward
        fields = ["kind", "name_de", "name_en", "description_de", "description_en", "image", "active", "in_catalogue",
                  "points_cost", "value", "currency", "cause", "stock", "limit_per_member", "min_tier", "valid_from",
                  "valid_until", "voucher_valid_days", "terms_de", "terms_en"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["unlimited_stock"].initial = self.instance.stock is None

    def clean(self):
        cleaned = super().clean()
        kind, value = cleaned.get("kind"), cleaned.get("value")
        if kind in (Reward.Kind.AMOUNT_VOUCHER, Reward.Kind.PERCENT_VOUCHER) and not value:
            self.add_error("value", _("An amount or percent voucher needs its value."))
        if kind == Reward.Kind.PERCENT_VOUCHER and value and value > 100:
            self.add_error("value", _("A percentage cannot be more than 100."))
        if kind == Reward.Kind.AMOUNT_VOUCHER and not cleaned.get("currency"):
            self.add_error("currency", _("An amount voucher needs its currency."))
        return cleaned


@admin.register(Reward)
class RewardAdmin(ExportActionsMixin, ImportButtonMixin, ModelAdmin):
    export_kind = import_kind = "rewards"  # transfers.admin
    form = RewardForm
    list_display = ["name_de", "kind", "points_cost", "stock_display", "times_redeemed", "points_spent", "min_tier",
                    "active", "in_catalogue"]
    list_filter = ["active", "kind", "in_catalogue"]
    search_fields = ["name_de", "name_en"]

    def get_fieldsets(self, request, obj=None):
        stock = ["stock"] if obj is None else ["stock", "unlimited_stock", "stock_change"]
        return [
            (None, {"fields": ["kind", "name_de", "name_en", "description_de", "description_en", "image", "active",
                               "in_catalogue"]}),
            (_("Price and value"), {"fields": ["points_cost", "value", "currency", "cause"]}),
            (_("Availability"), {"fields": [*stock, "limit_per_member", "min_tier", "valid_from", "valid_until",
                                            "voucher_valid_days"]}),
            (_("Terms"), {"fields": ["terms_de", "terms_en"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["stock"] if obj is not None else []

    def get_queryset(self, request):
        # One query for the whole list: counts and totals as annotations, not per row.
        valid = ~Q(redemptions__status=Redemption.Status.CANCELLED)
        return super().get_queryset(request).select_related("min_tier", "cause").annotate(
            redeemed=Count("redemptions", filter=valid), spent=Sum("redemptions__points", filter=valid, default=0))

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Everything but the stock from the form; the stock relative to the locked row.
        fields = [field.name for field in Reward._meta.concrete_fields
                  if field.name not in ("id", "stock", "created_at")]
        obj.save(update_fields=fields)
        unlimited = form.cleaned_data.get("unlimited_stock", False)
        change_by = form.cleaned_data.get("stock_change") or 0
        if change_by or unlimited != (obj.stock is None):
            obj.stock = vouchers.reward_stock_change(reward_id=obj.pk, change=change_by, unlimited=unlimited).stock

    @admin.display(description=_("stock"), ordering="stock")
    def stock_display(self, obj):
        return _("unlimited") if obj.stock is None else obj.stock

    @admin.display(description=_("redeemed"), ordering="redeemed")
    def times_redeemed(self, obj):
        return obj.redeemed

    @admin.display(description=_("points spent"), ordering="spent")
    def points_spent(self, obj):
        return obj.spent


@admin.register(Redemption)
class RedemptionAdmin(ExportActionsMixin, ReadOnlyAdminMixin, ModelAdmin):
    export_kind = "redemptions"  # transfers.admin
    list_display = ["display_code", "reward", "member", "points", "status", "source", "issued_at", "expires_at",
                    "used_at", "used_by_partner", "used_at_store"]
    list_select_related = ["reward", "member", "used_by_partner", "used_at_store"]
    list_filter = ["status", "source", "reward"]
    search_fields = ["code"]  # see get_search_results: exact, normalised
    search_help_text = _("Voucher code (as typed, with or without dashes) or customer number")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-id"]
    raw_id_fields = ["member"]
    actions = ["cancel_vouchers"]

    def get_search_results(self, request, queryset, search_term):
        # Exact matches only, on unique or indexed columns: a LIKE over every voucher ever
        # issued would be slow and would let a partial code find a voucher.
        term = search_term.strip()
        if not term:
            return queryset, False
        code = codes.normalize(term)
        if code:
            return queryset.filter(code=code), False
        return queryset.filter(member__customer_number=term.upper()), False

    @admin.display(description=_("voucher code"), ordering="code")
    def display_code(self, obj):
        return obj.display_code

    def has_cancel_permission(self, request):
        return request.user.has_perm("rewards.cancel_redemption")

    @admin.action(description=_("Cancel selected vouchers and refund their points"), permissions=["cancel"])
    def cancel_vouchers(self, request, queryset):
        cancelled, refused = apply_each(queryset.values_list("pk", flat=True),
                                        lambda redemption_id: vouchers.redemption_cancel(redemption_id=redemption_id))
        if cancelled:
            self.message_user(request, _("%(count)s voucher(s) cancelled, points and stock given back.")
                              % {"count": cancelled})
        if refused:
            self.message_user(request, _("%(count)s voucher(s) were used, cancelled or expired and stay as they are.")
                              % {"count": refused}, messages.WARNING)


@admin.register(StampCardProgram)
class StampCardProgramAdmin(ModelAdmin):
    list_display = ["name_de", "stamps_needed", "category", "min_amount", "mode", "reward", "active",
                    "cards_open", "cards_completed"]
    list_select_related = ["reward"]
    list_filter = ["active", "mode"]
    search_fields = ["name_de", "name_en", "category"]
    autocomplete_fields = ["reward"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            open_cards=Count("cards", filter=Q(cards__completed_at__isnull=True)),
            completed_cards=Count("cards", filter=Q(cards__completed_at__isnull=False)))

    @admin.display(description=_("open cards"), ordering="open_cards")
    def cards_open(self, obj):
        return obj.open_cards

    @admin.display(description=_("completed cards"), ordering="completed_cards")
    def cards_completed(self, obj):
        return obj.completed_cards


@admin.register(StampCard)
class StampCardAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["member", "program", "stamps", "stamps_needed", "completed_at", "redemption", "created_at"]
    list_select_related = ["member", "program", "redemption__reward"]
    list_filter = ["program", ("completed_at", admin.EmptyFieldListFilter)]
    search_fields = ["=member__customer_number"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-id"]

    @admin.display(description=_("stamps needed"))
    def stamps_needed(self, obj):
        return obj.program.stamps_needed


@admin.register(CashbackProgram)
class CashbackProgramAdmin(ModelAdmin):
    list_display = ["threshold_points", "voucher_points", "reward", "active"]
    list_select_related = ["reward"]
    autocomplete_fields = ["reward"]

    @admin.display(description=_("points per voucher"))
    def voucher_points(self, obj):
        return obj.voucher_points
