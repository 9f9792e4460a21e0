"""Survey answers as a console export (transfers.exports): one row per answer, cells escaped
against spreadsheet formulas. Comments are personal data: exporting them needs the same
permission as exporting members."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from transfers.resources import ISO_DATETIME, SafeExportMixin

from .models import Response


class ResponseResource(SafeExportMixin, resources.ModelResource):
    created_at = fields.Field(attribute="created_at", column_name=_("answered at"),
                              widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    survey = fields.Field(attribute="survey__name", column_name=_("survey"))
    kind = fields.Field(attribute="survey__kind", column_name=_("kind"))
    score = fields.Field(attribute="score", column_name=_("score"), widget=widgets.IntegerWidget())
    comment = fields.Field(attribute="comment", column_name=_("comment"))
    channel = fields.Field(attribute="channel", column_name=_("channel"))
    store = fields.Field(attribute="store__code", column_name=_("store"))
    tier = fields.Field(attribute="tier__name_de", column_name=_("tier"))
    customer_number = fields.Field(attribute="member__customer_number", column_name=_("customer number"))

    class Meta:
        model = Response
        fields = ("created_at", "survey", "kind", "score", "comment", "channel", "store", "tier", "customer_number")
        export_order = fields

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("survey", "store", "tier", "member")
