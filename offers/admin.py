"""The console for coupons: offers (with their audience, holdout and results) and, read-only,
the members' coupons and their uses.

- Assigning an offer to its audience is an action (a POST with the changelist's CSRF token)
  that calls `offers.services.offer_assign`: one INSERT … SELECT, however big the audience; the
  beat job does the same every night for the offers in force.
- The change page shows the results per arm (treated, holdout): members, activated, redeemed,
  buyers, purchases and spend per member in the offer's period, and the uplift of the share of
  buyers with its 95 % confidence interval (campaigns.experiment).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from core.admin_utils import EstimatedCountPaginator, MemberNumberSearchMixin, ReadOnlyAdminMixin

from . import selectors, services
from .models import MemberOffer, Offer, OfferUse


@admin.register(Offer)
class OfferAdmin(ModelAdmin):
    list_display = ["name_de", "effect_text", "audience", "valid_from", "valid_until", "active", "assigned",
                    "activated", "redeemed"]
    list_filter = ["active", "audience", "effect"]
    search_fields = ["name_de", "name_en", "category", "sku"]
    autocomplete_fields = ["segment"]
    raw_id_fields = ["store"]
    actions = ["assign_action"]
    readonly_fields = ["assigned_at"]
    change_form_after_template = "admin/offers/offer/results.html"
    fieldsets = [
        (None, {"fields": ["name_de", "name_en", "description_de", "description_en", "active"]}),
        (_("Effect"), {"fields": ["effect", "value", "uses_per_member"]}),
        (_("Conditions"), {"fields": ["category", "sku", "store", "min_spend", "valid_from", "valid_until"],
                           "description": _("Empty conditions match any purchase.")}),
        (_("Audience"), {"fields": ["audience", "segment", "history_category", "history_days", "holdout_percent",
                                    "assigned_at"],
                         "description": _("Chosen by purchase history: only members who currently consent to "
                                          "personalised offers get the coupon.")}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("segment", "store")

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self._counts = selectors.offer_counts([offer.pk for offer in changelist.result_list])
        return changelist

    def _count(self, obj: Offer, key: str) -> int:
        return getattr(self, "_counts", {}).get(obj.pk, {}).get(key, 0)

    @display(description=_("effect"))
    def effect_text(self, obj: Offer) -> str:
        return selectors.offer_effect_text(obj)

    @display(description=_("assigned"))
    def assigned(self, obj: Offer) -> int:
        return self._count(obj, "assigned")

    @display(description=_("activated"))
    def activated(self, obj: Offer) -> int:
        return self._count(obj, "activated")

    @display(description=_("redeemed"))
    def redeemed(self, obj: Offer) -> int:
        return self._count(obj, "redeemed")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        offer = self.get_object(request, object_id)
        if offer is not None:
            results = selectors.offer_results(offer)
            extra_context["results"] = results
            extra_context["arms"] = [(_("Got the coupon"), results.treated), (_("Holdout"), results.holdout)]
        return super().change_view(request, object_id, form_url, extra_context)

    def has_assign_permission(self, request):
        return request.user.has_perm("offers.assign_offer")

    @admin.action(description=_("Assign to their audience"), permissions=["assign"])
    def assign_action(self, request, queryset):
        for offer in queryset.order_by("pk"):
            report = services.offer_assign(offer_id=offer.pk)
            self.message_user(request, _("%(offer)s: %(assigned)s members added, %(holdout)s of them held out.")
                              % {"offer": offer.name, "assigned": report.assigned, "holdout": report.holdout},
                              messages.SUCCESS)


@admin.register(MemberOffer)
class MemberOfferAdmin(MemberNumberSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["offer", "member", "assigned_at", "activated_at", "uses", "holdout"]
    list_filter = ["holdout", ("activated_at", admin.EmptyFieldListFilter)]
    list_select_related = ["offer", "member"]
    search_fields = ["=member__customer_number"]
    raw_id_fields = ["member", "offer"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(OfferUse)
class OfferUseAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["member_offer", "purchase", "points", "created_at"]
    list_select_related = ["member_offer", "purchase"]
    raw_id_fields = ["member_offer", "purchase"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
