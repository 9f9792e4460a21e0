"""Referral programmes, members' referral codes and referrals.

Design in short (see shared/DESIGN.md, "Referrals"):
- One `ReferralProgram` is active at a time (a partial unique constraint). It says what both
  sides get (points, a reward voucher, or both), what qualifies (sign-up, or a first purchase of
  at least an amount), how long a referral may take to qualify (attribution window), how long a
  qualified referral waits before it is paid (hold period: a returned purchase pays nothing),
  the yearly cap per referrer and when a referrer's volume is suspicious.
- Every member gets a `ReferralCode` (created on first use): the share link is /r/<code>.
- A `Referral` joins referrer and referee (a member is referred at most once). Its status moves
  only through `referrals.services` (compare-and-set, transitions in one mapping), and every
  change stamps its own time. Suspicious referrals carry `review_reasons` and wait for staff.
- Rewards are ledger entries with source "referral" and the references
  "referral:<id>:referrer" / "referral:<id>:referee": unique, so nothing is paid twice.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.translation import TranslatedFieldsMixin, translated
from core.validators import LONG_TEXT_MAX, validate_programme_date
from members.models import Member

# No 0/O, 1/I/L: codes are read out at a till and typed in by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def generate_referral_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class ReferralProgramQuerySet(models.QuerySet):
    def in_force(self, at) -> ReferralProgramQuerySet:
        return self.filter(active=True).filter(Q(valid_from__isnull=True) | Q(valid_from__lte=at)).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=at))


class ReferralProgram(TranslatedFieldsMixin, models.Model):
    class Event(models.TextChoices):
        SIGNUP = "signup", _("sign-up")
        PURCHASE = "purchase", _("first purchase of at least the minimum amount")

    name_de = models.CharField(_("name (German)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    conditions_de = models.TextField(_("conditions (German)"), blank=True, max_length=LONG_TEXT_MAX,
                                     help_text=_("Shown to members on the \"Refer friends\" page."))
    conditions_en = models.TextField(_("conditions (English)"), blank=True, max_length=LONG_TEXT_MAX)
    active = models.BooleanField(_("active"), default=False, help_text=_("Only one programme can be active."))
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True, validators=[validate_programme_date])
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True, validators=[validate_programme_date])

    referrer_points = models.PositiveIntegerField(_("points for the referrer"), default=0)
    referrer_reward = models.ForeignKey(
        "rewards.Reward", verbose_name=_("voucher for the referrer"), null=True, blank=True,
        on_delete=models.PROTECT, related_name="+")
    referee_points = models.PositiveIntegerField(_("points for the new member"), default=0)
    referee_reward = models.ForeignKey(
        "rewards.Reward", verbose_name=_("voucher for the new member"), null=True, blank=True,
        on_delete=models.PROTECT, related_name="+")

    qualifying_event = models.CharField(_("qualifying event"), max_length=10, choices=Event.choices,
                                        default=Event.PURCHASE)
    min_purchase_amount = models.DecimalField(
        _("minimum first purchase (EUR)"), max_digits=10, decimal_places=2, default=0,
        validators=[MinValueValidator(0)],
        help_text=_("For the purchase event; CHF is converted to EUR."))
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=30,
        help_text=_("Days from the link click (or the code) in which the new member must qualify."))
    hold_days = models.PositiveSmallIntegerField(
        _("hold period (days)"), default=14,
        help_text=_("Days a qualified referral waits before it is paid: a returned purchase pays nothing."))
    yearly_cap = models.PositiveSmallIntegerField(
        _("rewarded referrals per referrer and year"), null=True, blank=True, help_text=_("Empty: no cap."))
    weekly_review_threshold = models.PositiveSmallIntegerField(
        _("review above (referrals per referrer and week)"), default=5,
        help_text=_("More referrals than this from one referrer within seven days go to the review queue."))
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReferralProgramQuerySet.as_manager()

    class Meta:
        ordering = ["-active", "-created_at"]
        verbose_name = _("referral programme")
        verbose_name_plural = _("referral programmes")
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_referral_programme"),
            models.CheckConstraint(condition=Q(min_purchase_amount__gte=0), name="referral_min_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True)
                | Q(valid_until__gt=models.F("valid_from")), name="referral_programme_window_ordered"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if not (self.referrer_points or self.referrer_reward_id or self.referee_points or self.referee_reward_id):
            raise ValidationError(_("Give at least one side points or a voucher."))
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValidationError({"valid_until": _("The end must come after the start.")})

    name = translated()

    conditions = translated()


class ReferralCode(models.Model):
    """A member's own code, for the share link /r/<code>. Created when first needed."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="referral_code")
    code = models.CharField(_("referral code"), max_length=16, unique=True, default=generate_referral_code)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("referral code")
        verbose_name_plural = _("referral codes")

    def __str__(self) -> str:
        return self.code


class ReferralClaim(models.Model):
    """A code remembered from sign-up until the e-mail is verified and the login has its member.

    Short-lived: `referrals.signals` turns it into a `Referral` (or drops an invalid code) when
    the address is confirmed."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referral_claim")
    code = models.CharField(_("referral code"), max_length=16)
    channel = models.CharField(_("channel"), max_length=10)
    started_at = models.DateTimeField(_("started at"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("referral claim")
        verbose_name_plural = _("referral claims")

    def __str__(self) -> str:
        return self.code


class ReferralQuerySet(models.QuerySet):
    def awaiting_review(self) -> ReferralQuerySet:
        return (self.filter(status__in=Referral.OPEN_STATUSES, reviewed_at__isnull=True)
                .exclude(review_reasons=[]))


class Referral(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        QUALIFIED = "qualified", _("qualified")
        REWARDED = "rewarded", _("rewarded")
        REJECTED = "rejected", _("rejected")
        EXPIRED = "expired", _("expired")

    class Channel(models.TextChoices):
        LINK = "link", _("share link")
        SIGNUP = "signup", _("code at sign-up")
        API = "api", _("partner API")
        STAFF = "staff", _("staff")

    class Flag(models.TextChoices):
        SAME_MEMBER = "same_member", _("referrer and new member are the same member")
        SAME_EMAIL = "same_email", _("same e-mail address (after normalising)")
        SAME_PHONE = "same_phone", _("same phone number")
        SAME_ADDRESS = "same_address", _("same postal address")
        EXISTING_MEMBER = "existing_member", _("the new member was already a member before the referral")
        WEEKLY_LIMIT = "weekly_limit", _("unusually many referrals from this referrer in a week")

    OPEN_STATUSES = (Status.PENDING, Status.QUALIFIED)
    # The allowed transitions, in one place: services compare-and-set against these.
    TRANSITIONS = {
        Status.PENDING: {Status.QUALIFIED, Status.REJECTED, Status.EXPIRED},
        Status.QUALIFIED: {Status.REWARDED, Status.REJECTED},
        Status.REWARDED: set(),
        Status.REJECTED: set(),
        Status.EXPIRED: set(),
    }

    program = models.ForeignKey(ReferralProgram, verbose_name=_("programme"), on_delete=models.PROTECT,
                                related_name="referrals")
    referrer = models.ForeignKey(Member, verbose_name=_("referrer"), on_delete=models.PROTECT,
                                 related_name="referrals_made")
    referee = models.OneToOneField(Member, verbose_name=_("new member"), on_delete=models.PROTECT,
                                   related_name="referral_received")
    code = models.CharField(_("code used"), max_length=16)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    review_reasons = models.JSONField(_("review reasons"), default=list, blank=True)
    started_at = models.DateTimeField(_("started at"), help_text=_("The link click, or when the code was given."))
    created_at = models.DateTimeField(_("attributed at"))
    qualified_at = models.DateTimeField(_("qualified at"), null=True, blank=True)
    payable_at = models.DateTimeField(_("payable from"), null=True, blank=True)
    rewarded_at = models.DateTimeField(_("rewarded at"), null=True, blank=True)
    rejected_at = models.DateTimeField(_("rejected at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    reject_reason = models.TextField(_("reason for rejection"), blank=True)
    reviewed_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("reviewed by"), null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    qualifying_purchase = models.ForeignKey("rewards.Purchase", verbose_name=_("qualifying purchase"), null=True,
                                            blank=True, on_delete=models.PROTECT, related_name="+")
    referrer_points = models.PositiveIntegerField(_("points paid to the referrer"), default=0)
    referee_points = models.PositiveIntegerField(_("points paid to the new member"), default=0)
    referrer_voucher = models.ForeignKey("rewards.Redemption", verbose_name=_("referrer's voucher"), null=True,
                                         blank=True, on_delete=models.PROTECT, related_name="+")
    referee_voucher = models.ForeignKey("rewards.Redemption", verbose_name=_("new member's voucher"), null=True,
                                        blank=True, on_delete=models.PROTECT, related_name="+")
    referrer_capped = models.BooleanField(
        _("referrer over the yearly cap"), default=False,
        help_text=_("The new member was rewarded; the referrer had reached the programme's yearly cap."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("entered by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    objects = ReferralQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        permissions = [("review_referral", _("Can approve and reject flagged referrals"))]
        constraints = [
            models.CheckConstraint(condition=~Q(status="qualified") | Q(qualified_at__isnull=False),
                                   name="referral_qualified_says_when"),
            models.CheckConstraint(condition=~Q(status="rewarded") | Q(rewarded_at__isnull=False),
                                   name="referral_rewarded_says_when"),
            models.CheckConstraint(condition=~Q(status="rejected") | (Q(rejected_at__isnull=False)
                                                                      & ~Q(reject_reason="")),
                                   name="referral_rejected_says_when_and_why"),
            models.CheckConstraint(condition=~Q(status="expired") | Q(expired_at__isnull=False),
                                   name="referral_expired_says_when"),
        ]
        indexes = [
            models.Index(fields=["referrer", "-created_at"], name="referral_referrer_time"),
            models.Index(fields=["payable_at"], condition=Q(status="qualified"), name="referral_payable"),
            models.Index(fields=["started_at"], condition=Q(status="pending"), name="referral_pending_start"),
        ]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referee_id} ({self.get_status_display()})"

    @property
    def flagged(self) -> bool:
        return bool(self.review_reasons) and self.reviewed_at is None

    def review_reason_labels(self) -> list[str]:
        labels = dict(self.Flag.choices)
        return [str(labels.get(code, code)) for code in self.review_reasons]
