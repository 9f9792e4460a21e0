"""django-import-export resources for the ledger, purchases, vouchers and the rewards catalogue.

Used by the console's exports (transfers.exports): every cell is escaped against spreadsheet
formulas by `SafeExportMixin`. The column names are what the importers (rewards.importers) read,
so a purchase or reward export can be imported again.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from transfers.resources import ISO_DATETIME, SafeExportMixin

from .models import PointEntry, Purchase, Redemption, Reward


class PointEntryResource(SafeExportMixin, resources.ModelResource):
    id = fields.Field(attribute="id", column_name=_("entry"), widget=widgets.IntegerWidget())
    created_at = fields.Field(attribute="created_at", column_name=_("when"),
                              widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    customer_number = fields.Field(attribute="member__customer_number", column_name=_("customer number"))
    kind = fields.Field(attribute="kind", column_name=_("kind"))
    points = fields.Field(attribute="points", column_name=_("points"), widget=widgets.IntegerWidget())
    reason = fields.Field(attribute="shown_reason", column_name=_("reason"))  # in the exporter's language
    source = fields.Field(attribute="source", column_name=_("source"))
    reference = fields.Field(attribute="reference", column_name=_("reference"))
    order_reference = fields.Field(attribute="purchase__order_reference", column_name=_("order reference"))
    expires_at = fields.Field(attribute="expires_at", column_name=_("expires at"),
                              widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    created_by = fields.Field(attribute="created_by__username", column_name=_("staff user"))

    class Meta:
        model = PointEntry
        fields = ("id", "created_at", "customer_number", "kind", "points", "reason", "source", "reference",
                  "order_reference", "expires_at", "created_by")
        export_order = fields

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("member", "purchase", "created_by")


class PurchaseResource(SafeExportMixin, resources.ModelResource):
    """Historical purchases: member by customer number, order reference, date, amount, currency, store."""

    customer_number = fields.Field(attribute="member__customer_number", column_name=_("customer number"))
    order_reference = fields.Field(attribute="order_reference", column_name=_("order reference"))
    occurred_at = fields.Field(attribute="occurred_at", column_name=_("date"),
                               widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    amount = fields.Field(attribute="amount", column_name=_("amount"), widget=widgets.DecimalWidget())
    currency = fields.Field(attribute="currency", column_name=_("currency"))
    store = fields.Field(attribute="store__code", column_name=_("store"))
    channel = fields.Field(attribute="channel", column_name=_("channel"))
    partner = fields.Field(attribute="partner__name", column_name=_("partner"))
    points_earned = fields.Field(attribute="points_earned", column_name=_("points earned"),
                                 widget=widgets.IntegerWidget())
    points_reversed = fields.Field(attribute="points_reversed", column_name=_("points reversed"),
                                   widget=widgets.IntegerWidget())
    returned_amount = fields.Field(attribute="returned_amount", column_name=_("returned amount"),
                                   widget=widgets.DecimalWidget())

    class Meta:
        model = Purchase
        fields = ("customer_number", "order_reference", "occurred_at", "amount", "currency", "store", "channel",
                  "partner", "points_earned", "points_reversed", "returned_amount")
        export_order = fields

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("member", "store", "partner")


class RedemptionResource(SafeExportMixin, resources.ModelResource):
    """Vouchers without their codes: a code is money until it is used, an export is not the place."""

    issued_at = fields.Field(attribute="issued_at", column_name=_("issued at"),
                             widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    customer_number = fields.Field(attribute="member__customer_number", column_name=_("customer number"))
    reward = fields.Field(attribute="reward__name_de", column_name=_("reward"))
    points = fields.Field(attribute="points", column_name=_("points"), widget=widgets.IntegerWidget())
    status = fields.Field(attribute="status", column_name=_("status"))
    source = fields.Field(attribute="source", column_name=_("source"))
    expires_at = fields.Field(attribute="expires_at", column_name=_("expires at"),
                              widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    used_at = fields.Field(attribute="used_at", column_name=_("used at"),
                           widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    used_by_partner = fields.Field(attribute="used_by_partner__name", column_name=_("used by partner"))

    class Meta:
        model = Redemption
        fields = ("issued_at", "customer_number", "reward", "points", "status", "source", "expires_at", "used_at",
                  "used_by_partner")
        export_order = fields

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("member", "reward", "used_by_partner")


class RewardResource(SafeExportMixin, resources.ModelResource):
    """The catalogue; the importer matches rewards by their German name."""

    name_de = fields.Field(attribute="name_de", column_name=_("name (German)"))
    name_en = fields.Field(attribute="name_en", column_name=_("name (English)"))
    kind = fields.Field(attribute="kind", column_name=_("kind"))
    points_cost = fields.Field(attribute="points_cost", column_name=_("points"), widget=widgets.IntegerWidget())
    value = fields.Field(attribute="value", column_name=_("value"), widget=widgets.DecimalWidget())
    currency = fields.Field(attribute="currency", column_name=_("currency"))
    stock = fields.Field(attribute="stock", column_name=_("stock"), widget=widgets.IntegerWidget())
    limit_per_member = fields.Field(attribute="limit_per_member", column_name=_("limit per member"),
                                    widget=widgets.IntegerWidget())
    min_tier = fields.Field(attribute="min_tier__name_de", column_name=_("minimum tier"))
    valid_from = fields.Field(attribute="valid_from", column_name=_("redeemable from"),
                              widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    valid_until = fields.Field(attribute="valid_until", column_name=_("redeemable until"),
                               widget=widgets.DateTimeWidget(format=ISO_DATETIME))
    description_de = fields.Field(attribute="description_de", column_name=_("description (German)"))
    description_en = fields.Field(attribute="description_en", column_name=_("description (English)"))
    active = fields.Field(attribute="active", column_name=_("active"), widget=widgets.BooleanWidget())
    in_catalogue = fields.Field(attribute="in_catalogue", column_name=_("in the catalogue"),
                                widget=widgets.BooleanWidget())

    class Meta:
        model = Reward
        fields = ("name_de", "name_en", "kind", "points_cost", "value", "currency", "stock", "limit_per_member",
                  "min_tier", "valid_from", "valid_until", "description_de", "description_en", "active",
                  "in_catalogue")
        export_order = fields
        import_id_fields = ("name_de",)

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("min_tier")


class DonationTotalsResource(SafeExportMixin, resources.Resource):
    """The donation totals per cause and month (rows of rewards.donations.totals_per_cause_and_month):
    what finance pays out to each cause. Months in the programme's time zone."""

    month = fields.Field(attribute="month", column_name=_("month"))
    cause = fields.Field(attribute="cause_name", column_name=_("donation cause"))
    organisation = fields.Field(attribute="organisation", column_name=_("organisation"))
    donation_count = fields.Field(attribute="donation_count", column_name=_("donations"),
                                  widget=widgets.IntegerWidget())
    donated_points = fields.Field(attribute="donated_points", column_name=_("points"), widget=widgets.IntegerWidget())
    donated_amount = fields.Field(attribute="donated_amount", column_name=_("amount (EUR)"),
                                  widget=widgets.DecimalWidget())

    class Meta:
        fields = ("month", "cause", "organisation", "donation_count", "donated_points", "donated_amount")
        export_order = fields

    def dehydrate_month(self, row: dict) -> str:
        from django.utils import timezone

        return f"{timezone.localtime(row['month']):%Y-%m}"
