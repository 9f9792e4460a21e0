"""The points ledger, purchases and earning rules.

Design in short (see shared/DESIGN.md):
- `PointEntry` is append-only. On PostgreSQL a trigger refuses UPDATE and DELETE, so even raw
  SQL cannot rewrite history; corrections are new entries.
- `Member.points_balance` is the cached SUM of a member's entries, written only by
  `rewards.ledger` in the same transaction, with the member row locked.
- Points held for the return window are not ledger entries yet: they sit on the purchase
  (`points_pending`) and in `Member.points_pending`, and become an `earn` entry when released.
- Expiry needs no mutable lots: credits carry `expires_at`, and the amount due at T is
  max(0, credits expiring by T - debits other than expiry) - already expired.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.stored_texts import shown_text
from core.translation import TranslatedFieldsMixin, translated
from core.validators import LONG_TEXT_MAX, validate_programme_date
from members.models import Member, Tier
from partners.models import Partner, Store


class Currency(models.TextChoices):
    EUR = "EUR", "EUR"
    CHF = "CHF", "CHF"


class StoreDayTotal(models.Model):
    """What a till counted in a day, members or not: the base of the participation rate (the
    share of all receipts that carried a loyalty card). A later report of the day replaces it."""

    store = models.ForeignKey(Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="day_totals")
    day = models.DateField(_("day"))
    receipts = models.PositiveIntegerField(_("receipts"),
                                           help_text=_("All receipts of the day, with or without a card."))
    revenue = models.DecimalField(_("revenue"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.EUR)
    reported_at = models.DateTimeField(_("reported at"), auto_now=True)

    class Meta:
        ordering = ["-day", "store"]
        verbose_name = _("store day total")
        verbose_name_plural = _("store day totals")
        constraints = [
            models.UniqueConstraint(fields=["store", "day"], name="store_day_total_once_per_day"),
            models.CheckConstraint(condition=Q(revenue__gte=0), name="store_day_revenue_not_negative"),
        ]
        indexes = [models.Index(fields=["day"], name="store_day_total_day")]

    def __str__(self) -> str:
        return f"{self.store} {self.day}: {self.receipts}"


class Channel(models.TextChoices):
    STORE = "store", _("store")
    ONLINE = "online", _("online shop")
    APP = "app", _("app")
    MEMBERSHIP = "membership", _("membership fee")


class Purchase(models.Model):
    # Indexed by purchase_member_time (member first): a second index would only cost every insert.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="purchases", db_index=False)
    # No index of its own: purchase_reference_unique (partner, order_reference) serves it.
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="purchases", db_index=False)
    # Indexed by purchase_store_time (store first), which also answers the lookups by store.
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="purchases",
                              db_index=False)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.STORE)
    order_reference = models.CharField(_("order reference"), max_length=80)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.EUR)
    occurred_at = models.DateTimeField(_("purchased at"))
    points_earned = models.BigIntegerField(_("points earned"), default=0)
    points_reversed = models.BigIntegerField(_("points reversed"), default=0)
    points_pending = models.BigIntegerField(
        _("points pending"), default=0, help_text=_("Held until the return window ends.")
    )
    available_at = models.DateTimeField(_("points available from"), null=True, blank=True)
    returned_amount = models.DecimalField(_("returned amount"), max_digits=12, decimal_places=2, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        constraints = [
            models.UniqueConstraint(fields=["partner", "order_reference"], name="purchase_reference_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="purchase_amount_positive"),
            models.CheckConstraint(condition=Q(returned_amount__gte=0, returned_amount__lte=models.F("amount")),
                                   name="purchase_returned_within_amount"),
            models.CheckConstraint(condition=Q(points_pending__gte=0), name="purchase_pending_not_negative"),
        ]
        indexes = [
            models.Index(fields=["member", "-occurred_at"], name="purchase_member_time"),
            models.Index(fields=["occurred_at"], name="purchase_time"),
            # "Bought in store X in the last N days" for segments: an index-only range scan.
            models.Index(fields=["store", "occurred_at"], include=["member"], condition=Q(store__isnull=False),
                         name="purchase_store_time"),
            models.Index(fields=["available_at"], condition=Q(points_pending__gt=0), name="purchase_pending_due"),
        ]

    def __str__(self) -> str:
        return f"{self.order_reference} ({self.amount} {self.currency})"


class MemberMonth(models.Model):
    """What a member bought in a calendar month (UTC), per currency: the number of purchases and
    their amount net of returns, in that currency (converted to EUR when read, at the rates of
    the day, exactly like `campaigns.segments.eur_amount()`). Segments read whole months here
    instead of aggregating every purchase of the period.

    Written only by PostgreSQL triggers on rewards_purchase (migration
    0016_segment_rollups): inserts, returns, member merges and deletes change it in the
    same transaction as the purchase, whichever code path (ORM, COPY, SQL functions) wrote it.
    A month whose purchases all moved away (a merge) has no row."""

    member = models.ForeignKey(Member, on_delete=models.DO_NOTHING, related_name="+", db_index=False)
    month = models.DateField(_("month"), help_text=_("The first day of the month (UTC)."))
    currency = models.CharField(_("currency"), max_length=3)
    purchases = models.IntegerField(_("purchases"))
    net_amount = models.DecimalField(_("amount net of returns"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("member month")
        verbose_name_plural = _("member months")
        constraints = [
            models.UniqueConstraint(fields=["member", "month", "currency"], name="member_month_unique"),
        ]
        indexes = [
            # Segments scan a range of months for every member: an index-only scan of this.
            models.Index(fields=["month", "member"], include=["currency", "purchases", "net_amount"],
                         name="member_month_by_month"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:%Y-%m} {self.currency}: {self.purchases}"


class MemberCategory(models.Model):
    """When a member last bought a product category (the category in upper case, as segments
    compare it): "bought Kaffee in the last 90 days" is then one indexed row per member,
    exact to the moment, instead of a search through every purchase line.

    Written only by PostgreSQL triggers (migration 0016_segment_rollups): new lines raise
    the moment; deleted or re-categorised lines, deleted purchases and purchases moved to
    another member (a merge) or in time recompute the members concerned."""

    member = models.ForeignKey(Member, on_delete=models.DO_NOTHING, related_name="+", db_index=False)
    category = models.CharField(_("category"), max_length=64)
    last_bought_at = models.DateTimeField(_("last bought at"))

    class Meta:
        verbose_name = _("member category")
        verbose_name_plural = _("member categories")
        constraints = [
            models.UniqueConstraint(fields=["member", "category"], name="member_category_unique"),
        ]
        indexes = [
            models.Index(fields=["category", "last_bought_at"], include=["member"], name="member_category_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.category}: {self.last_bought_at:%Y-%m-%d}"


class TierMembershipQuerySet(models.QuerySet):
    def active_on(self, day: date) -> TierMembershipQuerySet:
        return self.filter(status=TierMembership.Status.ACTIVE, starts__lte=day, ends__gte=day)


class TierMembership(models.Model):
    """A member's paid (VIP, for a yearly fee) or invitation membership of a tier, from `starts` to
    `ends` (both days included). Rows are kept: a renewal is a new row starting the day after the
    previous one ends, so the history of memberships and fees stays. The tier engine
    (rewards.tier_memberships) keeps Member.tier at the highest of the points tier and the
    active memberships."""

    class Source(models.TextChoices):
        PAID = "paid", _("paid")
        INVITATION = "invitation", _("invitation")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        ENDED = "ended", _("ended")
        RETURNED = "returned", _("fee returned")

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="tier_memberships")
    tier = models.ForeignKey(Tier, verbose_name=_("tier"), on_delete=models.PROTECT, related_name="memberships")
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    starts = models.DateField(_("starts"))
    ends = models.DateField(_("ends"), help_text=_("The last day of the membership."))
    fee_purchase = models.OneToOneField(Purchase, verbose_name=_("fee purchase"), null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="tier_membership")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("invited by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = TierMembershipQuerySet.as_manager()

    class Meta:
        ordering = ["-starts", "-id"]
        verbose_name = _("tier membership")
        verbose_name_plural = _("tier memberships")
        permissions = [
            ("sell_membership", _("Can sell and renew paid tier memberships")),
            ("invite_to_tier", _("Can invite members into an invitation tier")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends__gt=models.F("starts")), name="membership_ends_after_start"),
            # A paid membership has its fee purchase; an invitation has none.
            models.CheckConstraint(condition=Q(source="paid", fee_purchase__isnull=False)
                                   | Q(source="invitation", fee_purchase__isnull=True),
                                   name="membership_fee_only_when_paid"),
        ]
        indexes = [
            models.Index(fields=["member", "-ends"], name="membership_member_ends"),
            models.Index(fields=["ends"], condition=Q(status="active"), name="membership_active_ends"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} {self.starts}–{self.ends} ({self.get_source_display()})"


class PurchaseLine(models.Model):
    """A line of a purchase; a purchase posted without lines gets one line for its whole amount,
    so returns always reverse per line at the points that line earned."""

    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(_("SKU"), max_length=64, blank=True)
    category = models.CharField(_("category"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    points = models.BigIntegerField(_("points earned"), default=0)
    returned_amount = models.DecimalField(_("returned amount"), max_digits=12, decimal_places=2, default=Decimal("0"))
    points_reversed = models.BigIntegerField(_("points reversed"), default=0)

    class Meta:
        ordering = ["id"]
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="line_amount_positive"),
            models.CheckConstraint(condition=Q(returned_amount__gte=0, returned_amount__lte=models.F("amount")),
                                   name="line_returned_within_amount"),
        ]

    def __str__(self) -> str:
        return f"{self.sku or self.category or '-'} {self.amount}"


class PurchaseReturn(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="returns")
    reference = models.CharField(_("return reference"), max_length=80)
    amount = models.DecimalField(_("amount returned"), max_digits=12, decimal_places=2)
    points_reversed = models.BigIntegerField(_("points reversed"))
    shortfall_points = models.BigIntegerField(
        _("shortfall"), default=0,
        help_text=_("Points the member had already spent: they could not be taken back."),
    )
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("return")
        verbose_name_plural = _("returns")
        constraints = [
            models.UniqueConstraint(fields=["purchase", "reference"], name="return_reference_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="return_amount_positive"),
        ]
        indexes = [models.Index(fields=["-created_at"], condition=Q(shortfall_points__gt=0), name="return_shortfall")]

    def __str__(self) -> str:
        return f"{self.reference} ({self.amount})"


class PointEntryQuerySet(models.QuerySet):
    def credits(self) -> PointEntryQuerySet:
        return self.filter(points__gt=0)


class PointEntry(models.Model):
    class Kind(models.TextChoices):
        EARN = "earn", _("earned")
        BONUS = "bonus", _("bonus")
        REDEEM = "redeem", _("redeemed")
        REFUND = "refund", _("refund")
        REVERSAL = "reversal", _("reversal (return)")
        ADJUST = "adjust", _("adjustment")
        EXPIRE = "expire", _("expired")
        TRANSFER = "transfer", _("transfer (merge)")

    # The ledger's indexes are what every earn and the expiry job write: member by entry_member_time
    # (member first), purchase and staff user only where set (partial indexes).
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="point_entries", db_index=False)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    points = models.BigIntegerField(_("points"))
    created_at = models.DateTimeField(_("when"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # A system text is stored as a key and parameters (core.stored_texts) and translated when
    # shown (`shown_reason`); `reason` holds staff's free text as typed, or the system text in the
    # programme's language for readers of the raw table. The database defaults keep a raw INSERT
    # that names neither column working (it is then a text without a key, recognised when shown).
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    reason_code = models.CharField(_("reason key"), max_length=40, blank=True, default="", db_default="")
    reason_params = models.JSONField(_("reason parameters"), blank=True, default=dict,
                                     db_default=models.Value({}, output_field=models.JSONField()))
    # What caused it: a purchase or return here; other apps name themselves in `source`
    # ("redemption", "referral", "campaign", "survey") with their id in `reference`.
    purchase = models.ForeignKey(Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="entries",
                                 db_index=False)
    source = models.CharField(_("source"), max_length=20, blank=True)
    reference = models.CharField(_("reference"), max_length=80, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("staff user"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", db_index=False)

    objects = PointEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="entry_points_not_zero"),
            models.CheckConstraint(condition=Q(points__gt=0) | Q(expires_at__isnull=True),
                                   name="entry_only_credits_expire"),
            models.UniqueConstraint(fields=["source", "reference"], condition=~Q(reference=""),
                                    name="entry_source_reference_unique"),
        ]
        indexes = [
            models.Index(fields=["member", "-created_at"], name="entry_member_time"),
            models.Index(fields=["expires_at"], condition=Q(expires_at__isnull=False), name="entry_expiry"),
            models.Index(fields=["purchase"], condition=Q(purchase__isnull=False), name="entry_purchase"),
            models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="entry_staff_user"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+d}"

    @property
    def shown_reason(self) -> str:
        """The reason in the active language: every reader of the ledger shows this, not `reason`."""
        return shown_text(self.reason_code, self.reason_params, self.reason)


class EarningRuleQuerySet(models.QuerySet):
    def in_force(self, at) -> EarningRuleQuerySet:
        return self.filter(active=True).filter(Q(valid_from__isnull=True) | Q(valid_from__lte=at)).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=at)
        )


class EarningRule(models.Model):
    """One rule of the earning engine. Effects:
    - base rate: points per currency unit (the highest-priority matching base rule applies);
    - multiplier: extra points on the base of matching lines (category, store, date, weekday…);
    - fixed bonus: a number of points per matching purchase.
    """

    class Effect(models.TextChoices):
        BASE_RATE = "base", _("points per currency unit")
        MULTIPLIER = "multiplier", _("multiplier")
        FIXED_BONUS = "bonus", _("fixed bonus")

    class CapPeriod(models.TextChoices):
        DAY = "day", _("day")
        MONTH = "month", _("month")
        YEAR = "year", _("year")

    name_de = models.CharField(_("name (German)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    active = models.BooleanField(_("active"), default=False)
    priority = models.PositiveSmallIntegerField(_("priority"), default=100, help_text=_("Higher runs first."))
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True, validators=[validate_programme_date])
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True, validators=[validate_programme_date])
    effect = models.CharField(_("effect"), max_length=12, choices=Effect.choices)
    value = models.DecimalField(
        _("value"), max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Points per unit, a multiplier such as 2.00, or the bonus points."),
    )
    stackable = models.BooleanField(
        _("stackable"), default=True, help_text=_("An exclusive rule stops all lower-priority promotions.")
    )
    # Conditions: empty means "any". A money threshold is in one currency: the rule then applies
    # to purchases in that currency only (one rule per currency), never "100" of whatever came.
    currency = models.CharField(
        _("currency"), max_length=3, choices=Currency.choices, blank=True,
        help_text=_("Purchases in this currency only. Required with a minimum amount: "
                    "for both currencies, make one rule per currency."))
    min_amount = models.DecimalField(_("minimum amount"), max_digits=12, decimal_places=2, null=True, blank=True,
                                     validators=[MinValueValidator(0)],
                                     help_text=_("In the rule's currency."))
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    category = models.CharField(_("product category"), max_length=64, blank=True)
    stores = models.ManyToManyField(Store, verbose_name=_("stores"), blank=True)
    tier = models.ForeignKey(Tier, verbose_name=_("tier"), null=True, blank=True, on_delete=models.PROTECT)
    weekdays = models.CharField(
        _("weekdays"), max_length=20, blank=True, help_text=_("Comma-separated, 0 = Monday … 6 = Sunday.")
    )
    cap_points = models.PositiveIntegerField(_("cap (points per member)"), null=True, blank=True)
    cap_period = models.CharField(_("cap period"), max_length=5, choices=CapPeriod.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EarningRuleQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "id"]
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="rule_value_positive"),
            models.CheckConstraint(condition=Q(cap_points__isnull=True) | ~Q(cap_period=""),
                                   name="rule_cap_has_period"),
            models.CheckConstraint(condition=Q(min_amount__isnull=True) | ~Q(currency=""),
                                   name="rule_money_threshold_has_currency"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.min_amount is not None and not self.currency:
            raise ValidationError({"currency": _("A rule with a minimum amount needs its currency: "
                                                 "100 EUR and 100 CHF are different amounts.")})

    @property
    def name(self) -> str:
        from django.utils.translation import get_language

        if (get_language() or "de").startswith("en") and self.name_en:
            return self.name_en
        return self.name_de

    @property
    def weekday_set(self) -> set[int]:
        return {int(day) for day in self.weekdays.split(",") if day.strip().isdigit()}


class PurchasePoints(TranslatedFieldsMixin, models.Model):
    """The breakdown of a purchase's points: one row per component ("1 point per EUR = 42").

    Points another app adds as the purchase is recorded (rewards.purchases.PurchaseBonus: an
    activated coupon of offers) have no rule here: they carry their name in `label_de`/`label_en`,
    as it read when the purchase was booked."""

    class Kind(models.TextChoices):
        BASE = "base", _("base rate")
        TIER = "tier", _("tier multiplier")
        MULTIPLIER = "multiplier", _("promotion")
        BONUS = "bonus", _("bonus")
        OFFER = "offer", _("coupon")

    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="breakdown")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # No index of its own: award_rule_purchase (rule, purchase) serves it.
    rule = models.ForeignKey(EarningRule, null=True, blank=True, on_delete=models.PROTECT, related_name="awards",
                             db_index=False)
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    points = models.BigIntegerField(_("points"))
    label_de = models.CharField(_("label (German)"), max_length=120, blank=True)
    label_en = models.CharField(_("label (English)"), max_length=120, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("points component")
        verbose_name_plural = _("points breakdown")
        indexes = [models.Index(fields=["rule", "purchase"], name="award_rule_purchase")]

    def __str__(self) -> str:
        return f"{self.describe()} = {self.points:+d}"

    def describe(self) -> str:
        """Shown to member and staff in their language, e.g. "Gold ×1.25"."""
        if self.kind == self.Kind.TIER and self.tier is not None:
            return _("%(tier)s tier ×%(factor)s") % {"tier": self.tier.name, "factor": self.tier.earn_multiplier}
        if self.label_de:
            return self._translated("label")
        return self.rule.name if self.rule is not None else self.get_kind_display()


# --- Rewards catalogue, vouchers, stamp cards -------------------------------------------------

class Reward(TranslatedFieldsMixin, models.Model):
    """Something members spend points on. Stock and per-member limits are checked in the same
    transaction that takes the points (rewards.vouchers.redemption_create).

    `stock` is a counter the services move with F(); the console changes it through
    `reward_stock_change`, never by saving a number it read earlier."""

    class Kind(models.TextChoices):
        AMOUNT_VOUCHER = "amount", _("amount voucher")
        PERCENT_VOUCHER = "percent", _("percent voucher")
        FREE_PRODUCT = "product", _("free product")
        EXPERIENCE = "experience", _("experience or event")
        DONATION = "donation", _("donation to a cause")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    name_de = models.CharField(_("name (German)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    description_de = models.TextField(_("description (German)"), blank=True, max_length=LONG_TEXT_MAX)
    description_en = models.TextField(_("description (English)"), blank=True, max_length=LONG_TEXT_MAX)
    terms_de = models.TextField(_("terms (German)"), blank=True, max_length=LONG_TEXT_MAX)
    terms_en = models.TextField(_("terms (English)"), blank=True, max_length=LONG_TEXT_MAX)
    image = models.FileField(_("image"), upload_to="rewards/", blank=True,
                             validators=[FileExtensionValidator(["jpg", "jpeg", "png", "webp", "svg"])])
    points_cost = models.PositiveIntegerField(_("points"))
    value = models.DecimalField(_("value"), max_digits=10, decimal_places=2, null=True, blank=True,
                                validators=[MinValueValidator(0)],
                                help_text=_("Amount (amount voucher), percent (percent voucher) or the euros "
                                            "given to the cause per redemption (donation)."))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, blank=True)
    # A donation reward gives `value` EUR to its cause per redemption (rewards.donation_models).
    cause = models.ForeignKey("rewards.DonationCause", verbose_name=_("donation cause"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="rewards",
                              help_text=_("Donation rewards only: who receives the value in EUR."))
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty: unlimited."))
    limit_per_member = models.PositiveSmallIntegerField(_("limit per member"), null=True, blank=True)
    min_tier = models.ForeignKey(Tier, verbose_name=_("minimum tier"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateTimeField(_("redeemable from"), null=True, blank=True, validators=[validate_programme_date])
    valid_until = models.DateTimeField(_("redeemable until"), null=True, blank=True,
                                       validators=[validate_programme_date])
    voucher_valid_days = models.PositiveSmallIntegerField(_("voucher valid for (days)"), default=90)
    in_catalogue = models.BooleanField(_("in the catalogue"), default=True,
                                       help_text=_("Off for rewards only given by stamp cards, cashback or campaigns."))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["points_cost", "id"]
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_points_positive"),
            models.CheckConstraint(condition=Q(stock__isnull=True) | Q(stock__gte=0), name="reward_stock_not_negative"),
            # A donation goes somewhere, in euros; other kinds give no money to a cause.
            models.CheckConstraint(
                condition=(~Q(kind="donation") & Q(cause__isnull=True))
                | Q(kind="donation", cause__isnull=False, value__isnull=False, value__gt=0, currency="EUR"),
                name="reward_donation_names_cause_and_euros",
                violation_error_message=_("A donation reward needs its cause and its value in EUR; "
                                          "other rewards name no cause.")),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The donation rules, with messages staff understand (console form and catalogue import);
        the database constraint holds them for everything else."""
        from django.core.exceptions import ValidationError

        super().clean()
        if self.kind != self.Kind.DONATION:
            if self.cause_id is not None:
                raise ValidationError({"cause": _("Only a donation reward names a cause.")})
            return
        errors = {}
        if self.cause_id is None:
            errors["cause"] = _("A donation reward needs its cause.")
        if not self.value or self.value <= 0:
            errors["value"] = _("A donation reward needs the euros the cause gets per redemption.")
        if self.currency and self.currency != Currency.EUR:
            errors["currency"] = _("Donations are paid in EUR.")
        self.currency = Currency.EUR
        if errors:
            raise ValidationError(errors)

    name = translated()

    description = translated()

    terms = translated()


class Redemption(models.Model):
    """A voucher: what a member got for their points, with an unguessable code.

    Or a donation (rewards.donation_models): status DONATED from the start, no code, no expiry
    date; a voucher list, a till or the expiry job asks for a status or a code it never has."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("issued")
        USED = "used", _("used")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")
        DONATED = "donated", _("donated")

    class Source(models.TextChoices):
        CATALOGUE = "catalogue", _("catalogue")
        STAMP_CARD = "stamp_card", _("stamp card")
        CASHBACK = "cashback", _("cashback")
        CAMPAIGN = "campaign", _("campaign")
        GOODWILL = "goodwill", _("goodwill")
        REFERRAL = "referral", _("referral")
        CHALLENGE = "challenge", _("challenge")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    points = models.PositiveIntegerField(_("points spent"))
    code = models.CharField(_("voucher code"), max_length=32, unique=True, null=True, blank=True)  # none for a donation
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ISSUED)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices, default=Source.CATALOGUE)
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    used_by_partner = models.ForeignKey(Partner, verbose_name=_("used by partner"), null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    used_at_store = models.ForeignKey(Store, verbose_name=_("used in store"), null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="+")
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        permissions = [("cancel_redemption", _("Can cancel vouchers and refund their points"))]
        indexes = [
            models.Index(fields=["member", "-issued_at"], name="redemption_member_time"),
            models.Index(fields=["expires_at"], condition=Q(status="issued"), name="redemption_open_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("issued_at")),
                                   name="redemption_expires_after_issue"),
            # A used voucher always says when and where: the till's compare-and-set writes both.
            models.CheckConstraint(
                condition=~Q(status="used") | Q(used_at__isnull=False, used_by_partner__isnull=False),
                name="redemption_used_says_when_and_by_whom"),
            models.CheckConstraint(condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False),
                                   name="redemption_cancelled_says_when"),
            # A voucher has a code and an expiry date; a donation neither, and only a donation is DONATED.
            models.CheckConstraint(
                condition=Q(code__isnull=False, expires_at__isnull=False) & ~Q(status="donated")
                | Q(code__isnull=True, expires_at__isnull=True, status__in=["donated", "cancelled"]),
                name="redemption_voucher_or_donation"),
        ]

    def __str__(self) -> str:
        return f"{self.reward} ({self.display_code or self.get_status_display()})"

    @property
    def is_donation(self) -> bool:
        return self.code is None

    @property
    def display_code(self) -> str:
        from .codes import format_code

        return format_code(self.code) if self.code is not None else ""


class StampCardProgram(TranslatedFieldsMixin, models.Model):
    class Mode(models.TextChoices):
        PER_VISIT = "visit", _("one stamp per qualifying visit")
        PER_ITEM = "item", _("one stamp per qualifying item")

    name_de = models.CharField(_("name (German)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    stamps_needed = models.PositiveSmallIntegerField(_("stamps needed"), default=10)
    category = models.CharField(_("product category"), max_length=64, blank=True, help_text=_("Empty: any."))
    min_amount = models.DecimalField(
        _("minimum amount (EUR)"), max_digits=10, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Spent on qualifying items in one purchase; CHF is converted to EUR."))
    mode = models.CharField(_("stamps for"), max_length=5, choices=Mode.choices, default=Mode.PER_VISIT)
    reward = models.ForeignKey(Reward, verbose_name=_("reward"), on_delete=models.PROTECT, related_name="+")
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("stamp card programme")
        verbose_name_plural = _("stamp card programmes")
        constraints = [models.CheckConstraint(condition=Q(stamps_needed__gt=0), name="stamps_needed_positive")]

    def __str__(self) -> str:
        return self.name

    name = translated()


class StampCard(models.Model):
    """A member's card in a programme. At most one open card per member and programme; a full
    card whose reward cannot be issued (sold out, switched off) stays open with all its stamps
    and is completed as soon as the reward can be issued again."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="stamp_cards")
    program = models.ForeignKey(StampCardProgram, on_delete=models.PROTECT, related_name="cards")
    stamps = models.PositiveSmallIntegerField(_("stamps"), default=0)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    redemption = models.OneToOneField(Redemption, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("stamp card")
        verbose_name_plural = _("stamp cards")
        constraints = [
            models.UniqueConstraint(fields=["member", "program"], condition=Q(completed_at__isnull=True),
                                    name="one_open_stamp_card"),
        ]

    def __str__(self) -> str:
        return f"{self.program}: {self.stamps}/{self.program.stamps_needed}"


class StampCredit(models.Model):
    """Which purchase gave how many stamps in a programme: a replayed purchase stamps once."""

    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="stamp_credits")
    program = models.ForeignKey(StampCardProgram, on_delete=models.PROTECT, related_name="+")
    stamps = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["purchase", "program"], name="stamp_once_per_purchase")]

    def __str__(self) -> str:
        return f"{self.purchase_id}: {self.stamps}"


class CashbackProgram(models.Model):
    """When a member's balance reaches the threshold, points turn into a voucher by themselves."""

    threshold_points = models.PositiveIntegerField(_("threshold (points)"))
    points_per_voucher = models.PositiveIntegerField(
        _("points per voucher"), null=True, blank=True,
        help_text=_("What one voucher takes from the balance. Empty: the voucher's points cost."))
    reward = models.ForeignKey(Reward, verbose_name=_("voucher"), on_delete=models.PROTECT, related_name="+")
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("cashback programme")
        verbose_name_plural = _("cashback programmes")
        constraints = [
            # Which programme converts must never be a matter of row order.
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_cashback_programme"),
            models.CheckConstraint(condition=Q(points_per_voucher__isnull=True) | Q(points_per_voucher__gt=0),
                                   name="cashback_points_per_voucher_positive"),
            models.CheckConstraint(condition=Q(threshold_points__gt=0), name="cashback_threshold_positive"),
        ]

    def __str__(self) -> str:
        return f"≥ {self.threshold_points} → {self.reward}"

    @property
    def voucher_points(self) -> int:
        return self.points_per_voucher or self.reward.points_cost


class PartnerRedemption(models.Model):
    """Which partner (and store) issued a voucher through the API: a partner sees and cancels only
    its own, and a key restricted to stores only those of its stores. (Moved from loyalty_site;
    the table keeps its name.)"""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              db_index=False)
    redemption = models.OneToOneField(Redemption, on_delete=models.CASCADE, related_name="issued_by")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "loyalty_site_partnerredemption"
        verbose_name = _("voucher issued through the API")
        verbose_name_plural = _("vouchers issued through the API")
        indexes = [models.Index(fields=["partner", "-redemption"], name="partner_redemption_list")]

    def __str__(self) -> str:
        return f"{self.partner_id}: {self.redemption_id}"


# The donation models live in their own module; Django finds them through this import.
from .donation_models import Donation, DonationCause  # noqa: E402, F401
from .programme_models import ProgrammeSettings  # noqa: E402, F401
