"""Challenges, their progress, badges.

A challenge is a goal a marketer sets in the console (so many purchases, a spend, a category or
product tried, a referral, a survey answered, a streak of weeks with a purchase) for a period and
an audience, with a reward (points, a voucher, a badge). What each event added to a member's
progress is a `ChallengeContribution`, unique per (challenge, member, source key): a replayed
event adds nothing, and a return changes its purchase's contribution (engagement.engine).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Segment
from core.translation import TranslatedFieldsMixin, translated
from feedback.models import Survey
from members.models import Member
from rewards.models import Redemption, Reward


class Picture(models.TextChoices):
    """The badge pictures shipped in static/engagement/badges/ (no uploads)."""

    STAR = "star", _("star")
    TROPHY = "trophy", _("trophy")
    FLAME = "flame", _("flame")
    LEAF = "leaf", _("leaf")
    HEART = "heart", _("heart")
    BASKET = "basket", _("shopping basket")


class Badge(TranslatedFieldsMixin, models.Model):
    name_de = models.CharField(_("name (German)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80, blank=True, help_text=_("Empty: the German name."))
    description_de = models.CharField(_("description (German)"), max_length=255, blank=True)
    description_en = models.CharField(_("description (English)"), max_length=255, blank=True)
    picture = models.CharField(_("picture"), max_length=20, choices=Picture.choices, default=Picture.STAR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name_de"]
        verbose_name = _("badge")
        verbose_name_plural = _("badges")

    def __str__(self) -> str:
        return self.name

    name = translated()

    description = translated()

    @property
    def picture_url(self) -> str:
        return static(f"engagement/badges/{self.picture}.svg")


class ChallengeQuerySet(models.QuerySet):
    def running(self, at=None) -> ChallengeQuerySet:
        at = at or timezone.now()
        return self.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at), active=True, starts_at__lte=at)


class Challenge(TranslatedFieldsMixin, models.Model):
    class Goal(models.TextChoices):
        PURCHASES = "purchases", _("number of purchases")
        SPEND = "spend", _("spend (EUR)")
        CATEGORY = "category", _("a product category tried")
        PRODUCT = "product", _("a product (SKU) tried")
        REFERRAL = "referral", _("friends referred (rewarded referrals)")
        SURVEY = "survey", _("surveys answered")
        STREAK = "streak", _("weekly streak (consecutive weeks with a purchase)")

    name_de = models.CharField(_("name (German)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True, help_text=_("Empty: the German name."))
    description_de = models.TextField(_("description (German)"), max_length=1000, blank=True)
    description_en = models.TextField(_("description (English)"), max_length=1000, blank=True)
    goal = models.CharField(_("goal"), max_length=12, choices=Goal.choices)
    target = models.DecimalField(
        _("target"), max_digits=12, decimal_places=2,
        help_text=_("How many purchases, referrals, answers or weeks, or the spend in EUR, the member must reach."))
    category = models.CharField(_("product category"), max_length=64, blank=True,
                                help_text=_("Only for the goal 'a product category tried': the category as the "
                                            "tills send it."))
    sku = models.CharField(_("SKU"), max_length=64, blank=True,
                           help_text=_("Only for the goal 'a product (SKU) tried': the SKU as the tills send it."))
    survey = models.ForeignKey(Survey, verbose_name=_("survey"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+",
                               help_text=_("Only for the goal 'surveys answered'. Empty: any survey."))
    starts_at = models.DateTimeField(_("starts"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True, help_text=_("Empty: runs until deactivated."))
    segment = models.ForeignKey(Segment, verbose_name=_("audience (segment)"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+",
                                help_text=_("Empty: every member. Otherwise only members in this segment take part."))
    reward_points = models.PositiveIntegerField(_("reward: points"), default=0)
    reward = models.ForeignKey(Reward, verbose_name=_("reward: voucher"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+",
                               help_text=_("A voucher of this reward is issued free of points."))
    badge = models.ForeignKey(Badge, verbose_name=_("reward: badge"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="challenges")
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChallengeQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = _("challenge")
        verbose_name_plural = _("challenges")
        constraints = [
            models.CheckConstraint(condition=Q(target__gt=0), name="challenge_target_positive"),
            models.CheckConstraint(
                condition=Q(reward_points__gt=0) | Q(reward__isnull=False) | Q(badge__isnull=False),
                name="challenge_has_reward"),
            models.CheckConstraint(condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                                   name="challenge_ends_after_start"),
            models.CheckConstraint(condition=~Q(goal="category") | ~Q(category=""), name="challenge_category_given"),
            models.CheckConstraint(condition=~Q(goal="product") | ~Q(sku=""), name="challenge_sku_given"),
        ]

    def __str__(self) -> str:
        return self.name

    name = translated()

    description = translated()

    @property
    def counts_money(self) -> bool:
        return self.goal == self.Goal.SPEND

    def clean(self) -> None:
        """The console's checks, with a message at the field concerned (the constraints hold the
        same rules in the database)."""
        errors: dict[str, str] = {}
        if self.target is not None:
            if self.target <= 0:
                errors["target"] = _("The target must be greater than zero.")
            elif self.goal != self.Goal.SPEND and self.target != int(self.target):
                errors["target"] = _("For this goal the target is a whole number.")
        if self.goal == self.Goal.CATEGORY and not self.category.strip():
            errors["category"] = _("Name the product category the member should try.")
        if self.goal == self.Goal.PRODUCT and not self.sku.strip():
            errors["sku"] = _("Name the product (SKU) the member should try.")
        if self.goal != self.Goal.CATEGORY and self.category:
            errors["category"] = _("A category only applies to the goal 'a product category tried'.")
        if self.goal != self.Goal.PRODUCT and self.sku:
            errors["sku"] = _("A SKU only applies to the goal 'a product (SKU) tried'.")
        if self.goal != self.Goal.SURVEY and self.survey_id is not None:
            errors["survey"] = _("A survey only applies to the goal 'surveys answered'.")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The end must be after the start.")
        if not self.reward_points and self.reward_id is None and self.badge_id is None:
            errors["reward_points"] = _("Give a reward: points, a voucher, a badge, or several.")
        if errors:
            raise ValidationError(errors)

    def runs_at(self, at) -> bool:
        return self.active and self.starts_at <= at and (self.ends_at is None or at < self.ends_at)


class ChallengeProgress(models.Model):
    """A member's progress in a challenge: `value` is the sum of the contributions (for a streak:
    the streak's length in weeks), written by engagement.engine under the row's lock."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="challenge_progress", db_index=False)
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="progress")
    value = models.DecimalField(_("progress"), max_digits=12, decimal_places=2, default=Decimal(0))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    rewarded = models.BooleanField(_("rewarded"), default=False)
    points_awarded = models.PositiveIntegerField(_("points awarded"), default=0)
    redemption = models.ForeignKey(Redemption, verbose_name=_("voucher"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    reward_note = models.CharField(_("note"), max_length=255, blank=True,
                                   help_text=_("Why part of the reward could not be given (e.g. sold out)."))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("challenge progress")
        verbose_name_plural = _("challenge progress")
        constraints = [
            models.UniqueConstraint(fields=["member", "challenge"], name="progress_member_challenge_unique"),
            models.CheckConstraint(condition=Q(rewarded=False) | Q(completed_at__isnull=False),
                                   name="progress_rewarded_when_completed"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge} · {self.member_id}: {self.value}"

    @property
    def percent(self) -> int:
        target = self.challenge.target
        if self.completed_at is not None:
            return 100
        return max(0, min(100, int(self.value * 100 / target))) if target else 0


class ChallengeContribution(models.Model):
    """What one event (`source_key`: "purchase:123", "referral:45", "survey:67") added to a
    member's progress. `week` (the Monday) only for streak challenges."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    source_key = models.CharField(max_length=80)
    value = models.DecimalField(max_digits=12, decimal_places=2)
    week = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("contribution")
        verbose_name_plural = _("contributions")
        constraints = [
            models.UniqueConstraint(fields=["challenge", "member", "source_key"], name="contribution_once"),
        ]
        indexes = [models.Index(fields=["source_key"], name="contribution_source")]

    def __str__(self) -> str:
        return f"{self.source_key}: {self.value}"


class MemberBadge(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="badges", db_index=False)
    badge = models.ForeignKey(Badge, on_delete=models.PROTECT, related_name="awards")
    challenge = models.ForeignKey(Challenge, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    awarded_at = models.DateTimeField(_("awarded at"), default=timezone.now)

    class Meta:
        ordering = ["-awarded_at", "-id"]
        verbose_name = _("member badge")
        verbose_name_plural = _("member badges")
        constraints = [models.UniqueConstraint(fields=["member", "badge"], name="member_badge_once")]

    def __str__(self) -> str:
        return f"{self.badge} · {self.member_id}"
