"""The importers of rewards' data, registered with transfers in RewardsConfig.ready():
historical purchases (one by one through `purchase_record`, which runs the earning rules) and
the reward catalogue (plain rows, no ledger involved). The resources in rewards/resources.py
describe the same columns for exports."""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import LoyaltyError
from members.models import Member, Tier
from partners.models import Partner
from transfers.cells import (
    normalize_heading,
    parse_bool,
    parse_datetime,
    parse_money,
    parse_points,
    parsed_value,
    text_value,
)
from transfers.errors import ImportFailed, ImportFileError
from transfers.importers import BaseImporter, Column
from transfers.models import ImportJob

from .models import Purchase, Reward

_CURRENCIES = {"eur": "EUR", "€": "EUR", "euro": "EUR", "chf": "CHF", "fr": "CHF", "sfr": "CHF", "franken": "CHF"}
_CHANNELS = {"store": "store", "filiale": "store", "laden": "store", "markt": "store", "pos": "store",
             "online": "online", "webshop": "online", "onlineshop": "online", "shop": "online", "app": "app"}


class PurchaseImporter(BaseImporter):
    kind = ImportJob.Kind.PURCHASES
    columns = (
        Column("customer_number", gettext_lazy("customer number"),
               ("Kundennummer", "Kundennr", "Kd-Nr", "Customer number", "Customer no", "Customer ID")),
        Column("email", gettext_lazy("e-mail"), ("E-Mail", "Mail", "Email")),
        Column("order_reference", gettext_lazy("order reference"),
               ("Bestellnummer", "Belegnummer", "Bonnummer", "Rechnungsnummer", "Auftragsnummer", "Order reference",
                "Order number", "Order ID", "Receipt")),
        Column("occurred_at", gettext_lazy("date"), ("Datum", "Kaufdatum", "Einkaufsdatum", "Belegdatum", "Date",
                                                      "Purchase date", "Purchased at")),
        Column("amount", gettext_lazy("amount"), ("Betrag", "Umsatz", "Summe", "Bruttobetrag", "Amount", "Total")),
        Column("currency", gettext_lazy("currency"), ("Währung", "Waehrung", "Currency")),
        Column("store", gettext_lazy("store"), ("Filiale", "Filialnummer", "Markt", "Store", "Store code")),
        Column("channel", gettext_lazy("channel"), ("Kanal", "Vertriebskanal", "Channel")),
    )
    required = (("customer_number", "email"), ("order_reference",), ("occurred_at",), ("amount",))
    permissions = ("rewards.add_purchase",)  # purchases earn points

    @classmethod
    def form_fields(cls) -> dict[str, Any]:
        return {"partner": forms.ModelChoiceField(
            label=gettext_lazy("Partner"), required=False, queryset=Partner.objects.filter(active=True),
            help_text=gettext_lazy("For purchases: the shop or till system they come from."))}

    @classmethod
    def clean_form(cls, data: dict, form: Any) -> None:
        if not data.get("partner"):
            form.add_error("partner", gettext_lazy("Purchases need the partner they were made with."))

    @classmethod
    def form_options(cls, data: dict) -> dict:
        return {"partner_id": data["partner"].pk} if data.get("partner") else {}

    def prepare(self) -> None:
        partner_id = self.options.get("partner_id")
        self.partner = Partner.objects.filter(pk=partner_id).first() if partner_id else None
        if self.partner is None:
            raise ImportFileError(detail=_("choose the partner the purchases were made with"))
        self.stores = {normalize_heading(store.code): store for store in self.partner.stores.all()}
        self.first_line_of_reference: dict[str, int] = {}
        self.now = timezone.now()

    def clean(self, values: dict) -> tuple[dict, list]:
        errors: list[tuple[str, str]] = []
        data: dict[str, Any] = {"customer_number": text_value(values, "customer_number", 40, errors),
                                "email": text_value(values, "email", 254, errors)}
        if not data["customer_number"] and not data["email"]:
            errors.append(("", _("a customer number or an e-mail is needed")))
        data["order_reference"] = text_value(values, "order_reference", 80, errors)
        if not data["order_reference"]:
            errors.append(("order_reference", _("the order reference is missing")))
        occurred = parsed_value(values, "occurred_at", parse_datetime, errors)
        if occurred is None and not any(column == "occurred_at" for column, _m in errors):
            errors.append(("occurred_at", _("the date is missing")))
        elif occurred is not None and occurred > self.now:
            errors.append(("occurred_at", _("the purchase date is in the future")))
        data["occurred_at"] = occurred
        amount = parsed_value(values, "amount", parse_money, errors)
        if amount is None and not any(column == "amount" for column, _m in errors):
            errors.append(("amount", _("the amount is missing")))
        elif amount is not None and amount <= 0:
            errors.append(("amount", _("the amount must be positive (returns are not imported)")))
        data["amount"] = amount
        currency = text_value(values, "currency", 10, errors)
        data["currency"] = _CURRENCIES.get(currency.lower(), "") if currency else "EUR"
        if not data["currency"]:
            errors.append(("currency", _("unknown currency “%(value)s” (EUR or CHF)") % {"value": currency}))
        store = text_value(values, "store", 40, errors)
        data["store"] = self.stores.get(normalize_heading(store)) if store else None
        if store and data["store"] is None:
            errors.append(("store", _("%(partner)s has no store “%(value)s”")
                           % {"partner": self.partner, "value": store}))
        channel = text_value(values, "channel", 20, errors)
        data["channel"] = _CHANNELS.get(normalize_heading(channel), "") if channel else "store"
        if not data["channel"]:
            errors.append(("channel", _("unknown channel “%(value)s” (store, online, app)") % {"value": channel}))
        return data, errors

    def process(self, rows: list[tuple[int, dict]]) -> None:
        candidates = []
        for line, values in rows:
            data, errors = self.clean(values)
            if errors:
                self.invalid(line, errors)
                continue
            first = self.first_line_of_reference.get(data["order_reference"])
            if first is not None:
                self.skipped(line, "order_reference", _("the same order reference as line %(line)s: imported once")
                             % {"line": first})
                continue
            self.first_line_of_reference[data["order_reference"]] = line
            candidates.append((line, data))
        if candidates:
            self._match(candidates)

    def _match(self, candidates: list[tuple[int, dict]]) -> None:
        from .purchases import purchase_record

        numbers = [data["customer_number"] for _line, data in candidates if data["customer_number"]]
        emails = [data["email"].lower() for _line, data in candidates if data["email"]]
        by_number = {m.customer_number: m for m in Member.objects.filter(customer_number__in=numbers)} \
            if numbers else {}
        by_email = {m.email_lower: m for m in Member.objects.annotate(email_lower=Lower("email"))
                    .filter(email_lower__in=emails).exclude(email="")} if emails else {}
        existing = dict(Purchase.objects.filter(
            partner=self.partner, order_reference__in=[data["order_reference"] for _line, data in candidates])
            .values_list("order_reference", "member_id"))
        survivors = {}
        for line, data in candidates:
            by_no = by_number.get(data["customer_number"]) if data["customer_number"] else None
            by_mail = by_email.get(data["email"].lower()) if data["email"] else None
            if data["customer_number"] and by_no is None:
                self.invalid(line, [("customer_number", _("no member has the customer number %(number)s")
                                     % {"number": data["customer_number"]})])
                continue
            if by_no is not None and by_mail is not None and by_no.pk != by_mail.pk:
                self.invalid(line, [("email", _("the e-mail belongs to customer %(number)s")
                                     % {"number": by_mail.customer_number})])
                continue
            member = by_no or by_mail
            if member is None:
                self.invalid(line, [("email", _("no member has the e-mail %(email)s") % {"email": data["email"]})])
                continue
            if member.status == Member.Status.MERGED and member.merged_into_id:
                # Purchases of a merged duplicate belong to the survivor, as the merge moved them.
                member = survivors.get(member.merged_into_id) or Member.objects.get(pk=member.merged_into_id)
                survivors[member.pk] = member
            owner = existing.get(data["order_reference"])
            if owner is not None:
                if owner != member.pk:
                    self.invalid(line, [("order_reference", _("this order reference belongs to another member"))])
                else:
                    self.counted("unchanged")
                continue
            if member.status != Member.Status.ACTIVE:
                self.invalid(line, [("customer_number", _("customer %(number)s is %(status)s")
                                     % {"number": member.customer_number, "status": member.get_status_display()})])
                continue
            self.counted("new")
            if self.write:
                try:
                    purchase_record(member_id=member.pk, partner=self.partner, order_reference=data["order_reference"],
                                    amount=data["amount"], currency=data["currency"], occurred_at=data["occurred_at"],
                                    store=data["store"], channel=data["channel"], booked_at=data["occurred_at"])
                except LoyaltyError as error:
                    raise ImportFailed(line=line, detail=str(error)) from error


# --- The catalogue -------------------------------------------------------------------------------

_REWARD_KINDS = {
    "amount": "amount", "wertgutschein": "amount", "gutschein": "amount", "amountvoucher": "amount",
    "percent": "percent", "rabattgutschein": "percent", "prozentgutschein": "percent", "percentvoucher": "percent",
    "product": "product", "gratisprodukt": "product", "produkt": "product", "freeproduct": "product",
    "experience": "experience", "erlebnis": "experience", "event": "experience", "veranstaltung": "experience",
    "donation": "donation", "spende": "donation",
}


class RewardImporter(BaseImporter):
    """The catalogue: plain rows, matched by German name (case-insensitive); no ledger involved."""

    kind = ImportJob.Kind.REWARDS
    columns = (
        Column("name_de", gettext_lazy("name (German)"), ("Name", "Bezeichnung", "Name (Deutsch)", "Prämie",
                                                           "Name DE", "Name (German)", "Reward")),
        Column("name_en", gettext_lazy("name (English)"), ("Name (Englisch)", "Name EN", "Name (English)")),
        Column("kind", gettext_lazy("kind"), ("Art", "Typ", "Kind", "Type")),
        Column("points_cost", gettext_lazy("points"), ("Punkte", "Punktepreis", "Points", "Points cost")),
        Column("value", gettext_lazy("value"), ("Wert", "Value")),
        Column("currency", gettext_lazy("currency"), ("Währung", "Currency")),
        Column("stock", gettext_lazy("stock"), ("Bestand", "Lagerbestand", "Stock")),
        Column("limit_per_member", gettext_lazy("limit per member"), ("Limit pro Mitglied", "Limit",
                                                                       "Limit per member")),
        Column("min_tier", gettext_lazy("minimum tier"), ("Mindeststufe", "Stufe", "Minimum tier", "Tier")),
        Column("valid_from", gettext_lazy("redeemable from"), ("Gültig ab", "Einlösbar ab", "Valid from")),
        Column("valid_until", gettext_lazy("redeemable until"), ("Gültig bis", "Einlösbar bis", "Valid until")),
        Column("description_de", gettext_lazy("description (German)"), ("Beschreibung", "Beschreibung (Deutsch)",
                                                                         "Description (German)")),
        Column("description_en", gettext_lazy("description (English)"), ("Beschreibung (Englisch)",
                                                                          "Description (English)", "Description")),
        Column("active", gettext_lazy("active"), ("Aktiv", "Active")),
        Column("in_catalogue", gettext_lazy("in the catalogue"), ("Im Katalog", "Katalog", "In catalogue")),
    )
    required = (("name_de",),)
    permissions = ("rewards.add_reward",)
    OPTIONAL_FIELDS = ("name_en", "kind", "points_cost", "value", "currency", "stock", "limit_per_member", "min_tier",
                       "valid_from", "valid_until", "description_de", "description_en", "active", "in_catalogue")

    def prepare(self) -> None:
        self.tiers = {}
        for tier in Tier.objects.all():
            for key in (tier.name_de, tier.name_en, str(tier.rank)):
                if key:
                    self.tiers[normalize_heading(key)] = tier
        self.rewards = {reward.name_de.lower(): reward for reward in Reward.objects.all()}
        self.first_line_of_name: dict[str, int] = {}

    def clean(self, values: dict) -> tuple[dict, list]:
        errors: list[tuple[str, str]] = []
        data: dict[str, Any] = {"name_de": text_value(values, "name_de", 120, errors)}
        if not data["name_de"]:
            errors.append(("name_de", _("the name is missing")))
        for name, length in (("name_en", 120), ("description_de", 5000), ("description_en", 5000)):
            if name in values:
                data[name] = text_value(values, name, length, errors)
        if kind := text_value(values, "kind", 40, errors):
            data["kind"] = _REWARD_KINDS.get(normalize_heading(kind))
            if data["kind"] is None:
                errors.append(("kind", _("unknown kind “%(value)s”") % {"value": kind}))
        for name in ("points_cost", "stock", "limit_per_member"):
            number = parsed_value(values, name, parse_points, errors)
            if number is not None:
                if number < 0 or (name == "points_cost" and number == 0):
                    errors.append((name, _("must be positive")))
                data[name] = number
        value = parsed_value(values, "value", parse_money, errors)
        if value is not None:
            data["value"] = value
        if currency := text_value(values, "currency", 10, errors):
            data["currency"] = _CURRENCIES.get(currency.lower())
            if data["currency"] is None:
                errors.append(("currency", _("unknown currency “%(value)s” (EUR or CHF)") % {"value": currency}))
        if tier_name := text_value(values, "min_tier", 80, errors):
            data["min_tier"] = self.tiers.get(normalize_heading(tier_name))
            if data["min_tier"] is None:
                errors.append(("min_tier", _("unknown tier “%(value)s”") % {"value": tier_name}))
        for name in ("valid_from", "valid_until"):
            moment = parsed_value(values, name, parse_datetime, errors)
            if moment is not None:
                data[name] = moment
        if data.get("valid_from") and data.get("valid_until") and data["valid_until"] < data["valid_from"]:
            errors.append(("valid_until", _("ends before it begins")))
        for name in ("active", "in_catalogue"):
            flag = parsed_value(values, name, parse_bool, errors)
            if flag is not None:
                data[name] = flag
        return data, errors

    def process(self, rows: list[tuple[int, dict]]) -> None:
        for line, values in rows:
            data, errors = self.clean(values)
            key = data["name_de"].lower()
            if not errors and (first := self.first_line_of_name.get(key)):
                self.skipped(line, "name_de", _("the same reward as line %(line)s: imported once") % {"line": first})
                continue
            reward = self.rewards.get(key)
            if not errors and reward is None:
                for name in ("kind", "points_cost"):
                    if data.get(name) is None:
                        errors.append((name, _("needed for a new reward")))
            if errors:
                self.invalid(line, errors)
                continue
            self.first_line_of_name[key] = line
            if reward is None:
                reward = Reward(**{name: value for name, value in data.items() if value is not None})
                changes = data
                outcome = "new"
            else:
                changes = {name: value for name, value in data.items()
                           if name in self.OPTIONAL_FIELDS and getattr(reward, name) != value}
                if "stock" in changes:
                    # Stock is a counter that redemptions move: an absolute number from a file would
                    # undo them. Restocking is a relative change in the console (reward_stock_change).
                    del changes["stock"]
                    self.report.warning(line, self.column_name("stock"),
                                        _("the stock of an existing reward is not changed by an import"))
                if not changes:
                    self.counted("unchanged")
                    continue
                reward = copy.copy(reward)  # the cached row stays as the database has it
                for name, value in changes.items():
                    setattr(reward, name, value)
                outcome = "updated"
            errors = self._catalogue_rules(reward)
            try:
                reward.full_clean()
            except ValidationError as error:
                errors += [(name if name in self.heading else "", " ".join(messages))
                           for name, messages in error.message_dict.items()]
            if errors:
                self.invalid(line, errors)
                continue
            self.counted(outcome)
            if self.write:
                if outcome == "new":
                    reward.save(force_insert=True)
                else:  # only what the file changes: never write back a stock read before
                    Reward.objects.filter(pk=reward.pk).update(**changes)
                self.rewards[key] = reward

    @staticmethod
    def _catalogue_rules(reward) -> list[tuple[str, str]]:
        """The rules the console's reward form applies."""
        errors = []
        if reward.kind in (Reward.Kind.AMOUNT_VOUCHER, Reward.Kind.PERCENT_VOUCHER) and not reward.value:
            errors.append(("value", _("an amount or percent voucher needs its value")))
        if reward.kind == Reward.Kind.PERCENT_VOUCHER and reward.value and reward.value > 100:
            errors.append(("value", _("a percentage cannot be more than 100")))
        if reward.kind == Reward.Kind.AMOUNT_VOUCHER and not reward.currency:
            errors.append(("currency", _("an amount voucher needs its currency")))
        return errors
