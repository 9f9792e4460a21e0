"""Paid (VIP) and invitation memberships in the console: the forms of the member page's actions
"Sell VIP membership" and "Invite to a tier" (rewards.admin_members calls the services with
them), the member list's filter by membership, and the read-only list of all memberships (the
member's 360° page shows theirs: rewards.selectors.member_overview; a read-only table there,
not an inline, so the member form posts no formset). Nothing here writes:
rewards.tier_memberships does, under the member's lock.
"""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from core.admin_utils import MemberNumberSearchMixin, ReadOnlyAdminMixin
from members.models import Tier
from partners.models import Partner, Store

from .models import TierMembership
from .selectors import purchase_ids_with_order_reference


def console_order_reference() -> str:
    """The fee's order reference for a sale in the console: unique, and recognisable as a fee."""
    return f"VIP-{timezone.localdate():%Y%m%d}-{secrets.token_hex(3).upper()}"


class SellMembershipForm(forms.Form):
    tier = forms.ModelChoiceField(label=_("Paid tier"), queryset=Tier.objects.filter(kind=Tier.Kind.PAID))
    partner = forms.ModelChoiceField(label=_("Sold by"), queryset=Partner.objects.filter(active=True),
                                     help_text=_("The partner whose revenue the fee is."))
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.select_related("partner"), required=False)
    order_reference = forms.CharField(label=_("Order reference"), max_length=80, required=False,
                                      help_text=_("The receipt or invoice number; left empty, one is made up."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        partners = list(self.fields["partner"].queryset[:2])
        if len(partners) == 1:
            self.fields["partner"].initial = partners[0]
        tiers = list(self.fields["tier"].queryset[:2])
        if len(tiers) == 1:
            self.fields["tier"].initial = tiers[0]

    def clean(self):
        data = super().clean()
        store, partner = data.get("store"), data.get("partner")
        if store is not None and partner is not None and store.partner_id != partner.pk:
            self.add_error("store", _("This store belongs to another partner."))
        data["order_reference"] = (data.get("order_reference") or "").strip() or console_order_reference()
        return data


class InviteToTierForm(forms.Form):
    tier = forms.ModelChoiceField(label=_("Invitation tier"),
                                  queryset=Tier.objects.filter(kind=Tier.Kind.INVITATION))
    ends = forms.DateField(label=_("Until"), help_text=_("The last day of the membership."),
                           widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("Reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_ends(self):
        ends = self.cleaned_data["ends"]
        if ends <= timezone.localdate():
            raise forms.ValidationError(_("The end date must be after today."))
        return ends


class MembershipFilter(admin.SimpleListFilter):
    """Members holding an active paid or invitation membership today."""

    title = _("membership")
    parameter_name = "membership"

    def lookups(self, request, model_admin):
        return [("any", _("active membership")), *TierMembership.Source.choices, ("none", _("no membership"))]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        active = TierMembership.objects.active_on(timezone.localdate()).filter(member=OuterRef("pk"))
        if value in TierMembership.Source.values:
            active = active.filter(source=value)
        return queryset.filter(~Exists(active) if value == "none" else Exists(active))


@admin.register(TierMembership)
class TierMembershipAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["member", "tier", "source", "status", "starts", "ends", "fee_purchase", "invited_by"]
    list_select_related = ["member", "tier", "fee_purchase", "invited_by"]
    list_filter = ["source", "status", "tier", ("ends", admin.DateFieldListFilter)]
    search_fields = ["=member__customer_number", "=fee_purchase__order_reference"]
    show_full_result_count = False
    ordering = ["-starts", "-id"]

    def search_exact_filter(self, field_path, values):
        if field_path == "fee_purchase__order_reference":  # the purchases first, through their unique index
            return Q(fee_purchase__in=purchase_ids_with_order_reference(values))
        return super().search_exact_filter(field_path, values)
