"""The console page of the programme settings: one record, reached from the sidebar's
"Programme" group. The list shows the record (before the first save, the add button: its
form starts from the server's settings); a second one cannot be added, none deleted. Saving
goes through `rewards.programme.programme_settings_update`; the audit trail records the change."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from unfold.admin import ModelAdmin

from .programme import programme_settings_initial, programme_settings_update
from .programme_models import SINGLETON_ID, ProgrammeSettings


@admin.register(ProgrammeSettings)
class ProgrammeSettingsAdmin(ModelAdmin):
    list_display = ["__str__", "return_window_days", "updated_at"]
    fields = ["return_window_days", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not ProgrammeSettings.objects.filter(pk=SINGLETON_ID).exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changeform_initial_data(self, request):
        return programme_settings_initial()

    def save_model(self, request, obj, form, change):
        saved = programme_settings_update(return_window_days=form.cleaned_data["return_window_days"],
                                          staff_user=request.user)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at
        obj._state.adding = False

    def response_post_save_add(self, request, obj):
        return HttpResponseRedirect(reverse("admin:rewards_programmesettings_change", args=[obj.pk]))

    def response_post_save_change(self, request, obj):
        return HttpResponseRedirect(reverse("admin:rewards_programmesettings_change", args=[obj.pk]))
