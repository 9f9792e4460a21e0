"""django-import-export resources for members: the columns of exports, spreadsheet-safe.

The column names are the ones the importer (members.importers) reads back, so an export can be
edited in a spreadsheet and imported again. Imports themselves run through members.importers,
not through `Resource.import_data`: members must be matched and deduplicated set-wise, and
balances may only move through the ledger services (see that module's docstring).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from transfers.resources import ISO_DATE, ISO_DATETIME, SafeExportMixin

from .models import Member, Tag


class MemberResource(SafeExportMixin, resources.ModelResource):
    customer_number = fields.Field(attribute="customer_number", column_name=_("customer number"))
    card_number = fields.Field(attribute="card_number", column_name=_("card number"))
    salutation = fields.Field(attribute="salutation", column_name=_("salutation"))
    first_name = fields.Field(attribute="first_name", column_name=_("first name"))
    last_name = fields.Field(attribute="last_name", column_name=_("last name"))
    email = fields.Field(attribute="email", column_name=_("e-mail"))
    phone = fields.Field(attribute="phone", column_name=_("phone"))
    birth_date = fields.Field(attribute="birth_date", column_name=_("birth date"),
                              widget=widgets.DateWidget(format=ISO_DATE))
    street = fields.Field(attribute="street", column_name=_("street"))
    postal_code = fields.Field(attribute="postal_code", column_name=_("postal code"))
    city = fields.Field(attribute="city", column_name=_("city"))
    country = fields.Field(attribute="country", column_name=_("country"))
    language = fields.Field(attribute="language", column_name=_("language"))
    joined_at = fields.Field(attribute="joined_at", column_name=_("join date"),
                             widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    tags = fields.Field(attribute="tags", column_name=_("tags"),
                        widget=widgets.ManyToManyWidget(Tag, field="name", separator=", "))
    tier = fields.Field(attribute="tier", column_name=_("tier"))
    points_balance = fields.Field(attribute="points_balance", column_name=_("points"), widget=widgets.IntegerWidget())
    status = fields.Field(attribute="status", column_name=_("status"))

    class Meta:
        model = Member
        fields = ("customer_number", "card_number", "salutation", "first_name", "last_name", "email", "phone",
                  "birth_date", "street", "postal_code", "city", "country", "language", "joined_at", "tags", "tier",
                  "points_balance", "status")
        export_order = fields
        import_id_fields = ("customer_number",)

    def dehydrate_salutation(self, member: Member) -> str:
        # The German or English word, which the importer reads back ("Frau", "Ms").
        return str(member.get_salutation_display()) if member.salutation else ""

    def dehydrate_tags(self, member: Member) -> str:
        return ", ".join(tag.name for tag in member.tags.all())  # prefetched, see export_queryset

    def dehydrate_tier(self, member: Member) -> str:
        return member.tier.name if member.tier_id else ""

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("tier").prefetch_related("tags")
