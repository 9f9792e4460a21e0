"""Personalised coupons (activatable offers).

- `Offer`: what a marketer sets up in the console: the effect (extra points multiplier on the
  points of the matching lines, or fixed bonus points), the conditions (category, product SKU,
  store, minimum spend in EUR), the validity, the uses per member, the audience (everyone, a
  campaigns segment, or chosen by purchase history: only members whose current consent to
  personalised offers is granted) and a holdout share to measure the uplift against.
- `MemberOffer`: one row per member and offer, written by the assignment (offers.services);
  a holdout row is never shown to the member and never applied. The member activates a coupon
  (`activated_at`); the next matching purchase applies it (`uses`, never above the offer's limit).
- `OfferUse`: which purchase used a coupon for how many points (once per purchase).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Segment
from core.translation import TranslatedFieldsMixin, translated
from core.validators import LONG_TEXT_MAX, validate_programme_date
from members.models import Member
from partners.models import Store
from rewards.models import Purchase

HOLDOUT_MAX_PERCENT = 90


class Offer(TranslatedFieldsMixin, models.Model):
    class Effect(models.TextChoices):
        MULTIPLIER = "multiplier", _("points multiplier")
        BONUS = "bonus", _("bonus points")

    class Audience(models.TextChoices):
        EVERYONE = "everyone", _("everyone")
        SEGMENT = "segment", _("a segment")
        HISTORY = "history", _("chosen by purchase history (with consent to personalised offers)")

    name_de = models.CharField(_("name (German)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    description_de = models.TextField(_("description (German)"), blank=True, max_length=LONG_TEXT_MAX)
    description_en = models.TextField(_("description (English)"), blank=True, max_length=LONG_TEXT_MAX)
    effect = models.CharField(_("effect"), max_length=12, choices=Effect.choices)
    value = models.DecimalField(
        _("value"), max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("A multiplier such as 2.00 (double points on the matching products) or the bonus points."))
    # Conditions: empty means "any".
    category = models.CharField(_("product category"), max_length=64, blank=True)
    sku = models.CharField(_("product SKU"), max_length=64, blank=True)
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    min_spend = models.DecimalField(_("minimum spend (EUR)"), max_digits=12, decimal_places=2, null=True, blank=True,
                                    validators=[MinValueValidator(0)],
                                    help_text=_("On the matching products of one purchase; CHF is converted to EUR."))
    valid_from = models.DateTimeField(_("valid from"), validators=[validate_programme_date])
    valid_until = models.DateTimeField(_("valid until"), validators=[validate_programme_date])
    uses_per_member = models.PositiveSmallIntegerField(_("uses per member"), default=1,
                                                       validators=[MinValueValidator(1)])
    audience = models.CharField(_("audience"), max_length=10, choices=Audience.choices, default=Audience.EVERYONE)
    segment = models.ForeignKey(Segment, verbose_name=_("segment"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    history_category = models.CharField(
        _("bought category"), max_length=64, blank=True,
        help_text=_("Purchase history audience: members who bought this category in the last days below."))
    history_days = models.PositiveSmallIntegerField(_("in the last days"), default=90,
                                                    validators=[MinValueValidator(1), MaxValueValidator(3660)])
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout (%)"), default=0, validators=[MaxValueValidator(HOLDOUT_MAX_PERCENT)],
        help_text=_("Members of the audience who do not get the coupon, to measure the uplift against."))
    active = models.BooleanField(_("active"), default=True)
    assigned_at = models.DateTimeField(_("last assigned"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-valid_from", "-id"]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        permissions = [("assign_offer", _("Can assign coupons to their audience"))]
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="offer_value_positive"),
            models.CheckConstraint(condition=~Q(effect="multiplier") | Q(value__gt=1),
                                   name="offer_multiplier_above_one"),
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")), name="offer_valid_until_after_from"),
            models.CheckConstraint(condition=Q(uses_per_member__gte=1), name="offer_uses_positive"),
            models.CheckConstraint(condition=Q(holdout_percent__lte=HOLDOUT_MAX_PERCENT),
                                   name="offer_holdout_at_most_90"),
            models.CheckConstraint(condition=~Q(audience="segment") | Q(segment__isnull=False),
                                   name="offer_segment_audience_has_segment"),
            models.CheckConstraint(condition=~Q(audience="history") | ~Q(history_category=""),
                                   name="offer_history_audience_has_category"),
        ]

    def __str__(self) -> str:
        return self.name

    name = translated()

    description = translated()

    def clean(self) -> None:
        """The console's form errors for what the constraints refuse (translated, per field)."""
        errors = {}
        if self.effect == self.Effect.MULTIPLIER and self.value is not None and self.value <= 1:
            errors["value"] = _("A multiplier must be more than 1 (2.00 = double points).")
        if self.effect == self.Effect.BONUS and self.value is not None and self.value != self.value.to_integral_value():
            errors["value"] = _("Bonus points are a whole number.")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            errors["valid_until"] = _("The end must be after the start.")
        if self.audience == self.Audience.SEGMENT and self.segment_id is None:
            errors["segment"] = _("Choose the segment.")
        if self.audience == self.Audience.HISTORY and not self.history_category.strip():
            errors["history_category"] = _("Name the category the members bought.")
        if errors:
            raise ValidationError(errors)

    def is_valid_at(self, at) -> bool:
        return self.active and self.valid_from <= at <= self.valid_until

    @property
    def is_expired(self) -> bool:
        return timezone.now() > self.valid_until


class MemberOfferQuerySet(models.QuerySet):
    def visible(self) -> MemberOfferQuerySet:
        """What the member sees: not held out, of an active offer."""
        return self.filter(holdout=False, offer__active=True)

    def applicable(self, at=None) -> MemberOfferQuerySet:
        """Activated, not used up, of an offer valid at `at` (the buyer lock's cheap pre-check
        and the purchase's exact list start from here)."""
        at = at or timezone.now()
        return self.visible().filter(activated_at__isnull=False, uses__lt=F("offer__uses_per_member"),
                                     offer__valid_from__lte=at, offer__valid_until__gte=at)


class MemberOffer(models.Model):
    # Indexed by the (member, offer) unique constraint: member first.
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="offers", db_index=False)
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="assignments")
    assigned_at = models.DateTimeField(_("assigned at"), default=timezone.now)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    uses = models.PositiveSmallIntegerField(_("uses"), default=0)
    holdout = models.BooleanField(_("control group"), default=False,
                                  help_text=_("Held out to measure the uplift: never shown, never applied."))

    objects = MemberOfferQuerySet.as_manager()

    class Meta:
        ordering = ["-assigned_at", "-id"]
        verbose_name = _("member's coupon")
        verbose_name_plural = _("members' coupons")
        constraints = [
            models.UniqueConstraint(fields=["member", "offer"], name="member_offer_once"),
            models.CheckConstraint(condition=Q(holdout=False) | Q(activated_at__isnull=True, uses=0),
                                   name="member_offer_holdout_never_used"),
        ]
        indexes = [models.Index(fields=["offer", "holdout"], name="member_offer_offer_arm")]

    def __str__(self) -> str:
        return f"{self.offer_id}: {self.member_id}"


class OfferUse(models.Model):
    member_offer = models.ForeignKey(MemberOffer, on_delete=models.CASCADE, related_name="uses_list")
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="+")
    points = models.BigIntegerField(_("points"))
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("coupon use")
        verbose_name_plural = _("coupon uses")
        constraints = [
            models.UniqueConstraint(fields=["member_offer", "purchase"], name="offer_use_once_per_purchase"),
        ]

    def __str__(self) -> str:
        return f"{self.member_offer_id}: {self.purchase_id} (+{self.points})"
