"""The console for partners and the partner API: partners and their stores, keys (created with
the key shown once, revocable, never edited), webhook subscriptions and the history of every
webhook delivery.

Changes go through partners.services; the key's secret is never stored or shown again.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework_api_key.models import APIKey
from unfold.admin import ModelAdmin, TabularInline
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from core.admin_utils import LabelledInlineMixin, ReadOnlyAdminMixin
from core.validators import validate_programme_date

from . import services, stalls
from .models import (
    IdempotencyRecord,
    Partner,
    PartnerAPIKey,
    Scope,
    Store,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from .webhooks import delivery_error_text

# The library's own key model is not used (keys belong to partners here): keep it out of the console.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


class StoreInline(LabelledInlineMixin, TabularInline):
    model = Store
    extra = 0
    fields = ["code", "name", "city", "country"]


@admin.register(Partner)
class PartnerAdmin(ModelAdmin):
    list_display = ["name", "active", "created_at"]
    search_fields = ["name"]
    inlines = [StoreInline]


@admin.register(Store)
class StoreAdmin(ModelAdmin):
    list_display = ["name", "code", "partner", "city", "country"]
    list_select_related = ["partner"]
    list_filter = ["partner", "country"]
    search_fields = ["name", "code"]


class PartnerAPIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=Scope.choices,
                                       widget=UnfoldAdminCheckboxSelectMultipleWidget)

    class Meta:
        model = PartnerAPIKey
        fields = ["name", "partner", "scopes", "stores", "expiry_date"]

    def clean_expiry_date(self):
        value = self.cleaned_data.get("expiry_date")
        validate_programme_date(value)  # the key model is the library's: its field has no such check
        return value

    def clean(self):
        cleaned = super().clean()
        partner, stores = cleaned.get("partner"), cleaned.get("stores")
        if partner and stores and any(store.partner_id != partner.pk for store in stores):
            self.add_error("stores", _("A key can only be restricted to its partner's own stores."))
        return cleaned


@admin.register(PartnerAPIKey)
class PartnerAPIKeyAdmin(ModelAdmin):
    form = PartnerAPIKeyForm
    list_display = ["name", "partner", "prefix", "scope_list", "created", "expiry_date", "revoked"]
    list_filter = ["revoked", "partner"]
    list_select_related = ["partner"]
    search_fields = ["name", "=prefix", "partner__name"]
    filter_horizontal = ["stores"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A key is never edited: to change what it may do, create a new one and revoke this one.
        if obj is not None:
            return ["name", "partner", "prefix", "scope_list", "stores", "expiry_date", "created", "revoked"]
        return []

    def get_fields(self, request, obj=None):
        if obj is not None:
            return self.get_readonly_fields(request, obj)
        return super().get_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's row stays as a record

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, raw = services.partner_key_create(
            partner=form.cleaned_data["partner"], scopes=form.cleaned_data["scopes"], name=form.cleaned_data["name"],
            stores=list(form.cleaned_data.get("stores") or ()), expiry_date=form.cleaned_data.get("expiry_date"),
        )
        # The admin goes on with `obj` (the change log, the redirect): make it the stored key.
        obj.pk, obj.prefix, obj.hashed_key, obj.created = key.pk, key.prefix, key.hashed_key, key.created
        obj._state.adding = False
        self.message_user(request, _("The new API key, shown only this once: %(key)s") % {"key": raw},
                          messages.WARNING)

    def save_related(self, request, form, formsets, change):
        if not change:
            return  # the service set the stores
        super().save_related(request, form, formsets, change)

    @admin.action(description=_("Revoke the selected keys"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = sum(services.partner_key_revoke(key_id=key.pk) for key in queryset)
        self.message_user(request, ngettext("%(count)d key revoked.", "%(count)d keys revoked.", revoked)
                          % {"count": revoked}, messages.SUCCESS)


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(label=_("events"), choices=WebhookEvent.choices,
                                       widget=UnfoldAdminCheckboxSelectMultipleWidget)

    class Meta:
        model = WebhookSubscription
        fields = ["partner", "url", "events"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            services.webhook_url_validate(url)
        except services.InvalidWebhookURL as error:
            raise forms.ValidationError(str(error)) from error
        return url


@admin.display(description=_("last error"))
def _last_error(delivery: WebhookDelivery) -> str:
    return delivery_error_text(delivery.last_error)


class WebhookDeliveryInline(LabelledInlineMixin, TabularInline):
    model = WebhookDelivery
    fields = ["created_at", "event", "status", "attempts", "last_status_code", _last_error, "delivered_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-id"]
    show_change_link = True
    verbose_name_plural = _("latest deliveries")

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["partner", "url", "event_list", "active", "created_at"]
    list_filter = ["active", "partner"]
    list_select_related = ["partner"]
    search_fields = ["url", "partner__name"]
    actions = ["deactivate"]
    inlines = [WebhookDeliveryInline]

    def get_readonly_fields(self, request, obj=None):
        return ["partner", "url", "event_list", "active", "created_at"] if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj is not None else super().get_fields(request, obj)

    def get_inlines(self, request, obj):
        # A new subscription has no deliveries; with the inline the add page failed after saving
        # (save_related skips the formsets there, and the change message reads their results).
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: the delivery history stays

    @admin.display(description=_("events"))
    def event_list(self, obj):
        return ", ".join(obj.events)

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = services.webhook_subscription_create(partner=form.cleaned_data["partner"],
                                                       url=form.cleaned_data["url"], events=form.cleaned_data["events"])
        obj.pk, obj.secret, obj.created_at = created.pk, created.secret, created.created_at
        obj._state.adding = False
        self.message_user(request, _("Signing secret of the new subscription, shown only this once: %(secret)s")
                          % {"secret": created.secret}, messages.WARNING)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    @admin.action(description=_("Deactivate the selected subscriptions"), permissions=["change"])
    def deactivate(self, request, queryset):
        count = sum(services.webhook_subscription_deactivate(subscription_id=sub.pk) for sub in queryset)
        self.message_user(request, ngettext("%(count)d subscription deactivated.",
                                            "%(count)d subscriptions deactivated.", count) % {"count": count},
                          messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    """The history of every delivery: what was sent, how often, and what the receiver answered."""

    list_display = ["created_at", "event", "subscription", "status", "attempts", "last_status_code",
                    "last_attempt_at", "delivered_at"]
    list_filter = ["status", "event", "subscription__partner"]
    list_select_related = ["subscription__partner"]
    search_fields = ["=event_id", "subscription__url"]
    readonly_fields = ["subscription", "event", "event_id", "payload", "status", "attempts", "last_status_code",
                       _last_error, "last_attempt_at", "delivered_at", "created_at"]
    exclude = ["last_error"]  # shown translated by _last_error, never as an editable field
    show_full_result_count = False
    ordering = ["-id"]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            self._warn_if_stalled(request, stalls.webhook_deliveries_stalled_text())
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        delivery = self.get_object(request, object_id)
        if delivery is not None and request.method == "GET":
            self._warn_if_stalled(request, stalls.webhook_delivery_stall_text(delivery))
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _warn_if_stalled(request, text: str | None) -> None:
        if text:
            messages.warning(request, text)

    @admin.action(description=_("Send the selected failed deliveries again"), permissions=["change"])
    def retry(self, request, queryset):
        count = sum(services.webhook_delivery_retry(delivery_id=delivery.pk) for delivery in queryset)
        self.message_user(request, ngettext("%(count)d delivery queued again.", "%(count)d deliveries queued again.",
                                            count) % {"count": count}, messages.SUCCESS)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Read-only: what a partner's retry with a given key will get back."""

    list_display = ["created_at", "partner", "key", "method", "path", "response_status"]
    list_filter = ["response_status", "partner"]
    list_select_related = ["partner"]
    search_fields = ["=key"]
    readonly_fields = ["partner", "key", "fingerprint", "method", "path", "response_status", "response_body",
                       "created_at"]
    show_full_result_count = False
    ordering = ["-id"]
