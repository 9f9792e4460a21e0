"""Segments, campaigns, A/B variants, messages and raffles.

- A `Segment` is a list of whitelisted conditions (`SegmentCondition` rows) in OR-groups of
  AND-ed conditions; `campaigns.segments` compiles them into ORM `Q` objects. Nothing a user
  types ever reaches SQL except as a query parameter.
- A `Campaign` is a broadcast (now or at a time), a trigger (welcome, birthday, …) or a raffle.
  Its `Variant`s carry the texts (German and English, Django template syntax in a sandbox) and
  the A/B weights; `holdout_percent` of the eligible members form the control group.
- A `Message` is one member's copy of one occurrence of a campaign. The database refuses a
  second row for the same (campaign, member, occurrence): that, plus the compare-and-set claim
  in `campaigns.sending`, is why a retried or restarted send never mails anyone twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.validators import LONG_TEXT_MAX, validate_programme_date
from members.models import Member


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    description = models.TextField(_("description"), blank=True, max_length=LONG_TEXT_MAX)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name

    def members(self, *, now=None):
        """The active members in the segment, as a lazy queryset."""
        from .segments import segment_queryset

        return segment_queryset(self, now=now)


class SegmentCondition(models.Model):
    """One whitelisted condition. Rows with the same group number must all hold (AND); a member
    is in the segment when at least one group holds (OR)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")
    group = models.PositiveSmallIntegerField(
        _("group"), default=1,
        help_text=_("Conditions with the same group number must all hold; any one group is enough."),
    )
    field = models.CharField(_("field"), max_length=40)
    operator = models.CharField(_("operator"), max_length=20)
    value = models.CharField(_("value"), max_length=500, blank=True,
                             help_text=_("Lists are comma-separated; ranges are written as 'from,to'."))
    days = models.PositiveIntegerField(
        _("period (days)"), null=True, blank=True,
        help_text=_("For purchase conditions: look back this many days. Empty: the last 12 months."),
    )

    class Meta:
        ordering = ["group", "id"]
        verbose_name = _("condition")
        verbose_name_plural = _("conditions")

    def __str__(self) -> str:
        from .segments import condition_label  # segments compiles conditions and imports the members' models

        return condition_label(self.field, self.operator, self.value, self.days)


class CampaignQuerySet(models.QuerySet):
    def triggered_active(self) -> CampaignQuerySet:
        return self.filter(kind=Campaign.Kind.TRIGGERED, status=Campaign.Status.ACTIVE)


class Campaign(models.Model):
    class Kind(models.TextChoices):
        BROADCAST = "broadcast", _("broadcast")
        TRIGGERED = "triggered", _("triggered")
        RAFFLE = "raffle", _("raffle")

    class Trigger(models.TextChoices):
        WELCOME = "welcome", _("welcome after enrolment")
        BIRTHDAY = "birthday", _("birthday")
        AFTER_PURCHASE = "after_purchase", _("N days after a purchase")
        INACTIVITY = "inactivity", _("win-back after N days without a purchase")
        TIER_UPGRADE = "tier_upgrade", _("tier upgrade")
        POINTS_MILESTONE = "points_milestone", _("points milestone")
        POINTS_EXPIRING = "points_expiring", _("points expiring within N days")

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        SMS = "sms", _("SMS")
        PUSH = "push", _("push notification")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SCHEDULED = "scheduled", _("scheduled")
        SENDING = "sending", _("sending")
        ACTIVE = "active", _("active (triggered)")
        PAUSED = "paused", _("paused")
        DONE = "done", _("finished")
        CANCELLED = "cancelled", _("cancelled")

    name = models.CharField(_("name"), max_length=160)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.BROADCAST)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices, blank=True)
    trigger_days = models.PositiveIntegerField(
        _("N days"), null=True, blank=True,
        help_text=_("After a purchase / without a purchase / before points expire."),
    )
    trigger_points = models.PositiveIntegerField(_("milestone (points)"), null=True, blank=True)
    segment = models.ForeignKey(Segment, verbose_name=_("segment"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="campaigns", help_text=_("Empty: all active members."))
    channel = models.CharField(_("channel"), max_length=5, choices=Channel.choices, default=Channel.EMAIL)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT,
                              editable=False)
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True, validators=[validate_programme_date],
                                        help_text=_("Broadcasts and raffles: empty sends at once."))
    holdout_percent = models.PositiveSmallIntegerField(
        _("control group (%)"), default=10,
        help_text=_("Eligible members who get nothing, to measure the uplift against."),
    )
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=14,
        help_text=_("A purchase within this many days after the message (or the holdout) counts as a conversion."),
    )
    # Optional incentive, issued once per message.
    bonus_points = models.PositiveIntegerField(_("bonus points"), null=True, blank=True)
    reward = models.ForeignKey("rewards.Reward", verbose_name=_("voucher"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+",
                               help_text=_("A voucher of this reward is issued free with every message."))
    # Raffles (Verlosungen).
    entry_points = models.PositiveIntegerField(_("entry cost (points)"), default=0)
    entry_deadline = models.DateTimeField(_("entries until"), null=True, blank=True,
                                          validators=[validate_programme_date])
    winners_count = models.PositiveIntegerField(_("number of winners"), default=1)
    prize = models.ForeignKey("rewards.Reward", verbose_name=_("prize"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    draw_seed = models.CharField(_("draw seed"), max_length=40, blank=True, editable=False)
    draw_entries_hash = models.CharField(_("entries fingerprint (SHA-256)"), max_length=64, blank=True,
                                         editable=False)
    drawn_at = models.DateTimeField(_("drawn at"), null=True, blank=True, editable=False)
    # Progress.
    prepared_at = models.DateTimeField(_("audience prepared at"), null=True, blank=True, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, editable=False)
    last_progress_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        permissions = [("send_campaign", _("Can start, pause and resume campaigns")),
                       ("draw_raffle", _("Can draw the winners of a raffle"))]
        constraints = [
            models.CheckConstraint(condition=Q(holdout_percent__lte=90), name="campaign_holdout_at_most_90"),
            models.CheckConstraint(condition=Q(kind="triggered") | Q(trigger=""), name="campaign_trigger_if_triggered"),
            models.CheckConstraint(condition=~Q(kind="triggered") | ~Q(trigger=""),
                                   name="campaign_triggered_has_trigger"),
        ]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_status_due")]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """An A/B variant: texts and a weight. The texts are Django templates rendered in a sandbox
    with a fixed set of plain values (see campaigns.rendering)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=40, default="A")
    weight = models.PositiveSmallIntegerField(_("weight"), default=1)
    subject_de = models.CharField(_("subject (German)"), max_length=200, blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    body_de = models.TextField(_("text (German)"))
    body_en = models.TextField(_("text (English)"), blank=True, help_text=_("Empty: members get the German text."))

    class Meta:
        ordering = ["campaign", "id"]
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_name_unique_per_campaign"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.name}"

    def texts_for(self, language: str) -> tuple[str, str]:
        if language == "en" and self.body_en.strip():
            return self.subject_en or self.subject_de, self.body_en
        return self.subject_de, self.body_de


class Message(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        SKIPPED = "skipped", _("skipped")
        FAILED = "failed", _("failed")

    class SkipReason(models.TextChoices):
        HOLDOUT = "holdout", _("control group")
        NO_CONSENT = "no_consent", _("no consent")
        CAPPED = "capped", _("frequency cap")
        NO_ADDRESS = "no_address", _("no address")
        INACTIVE = "inactive", _("member not active")
        CANCELLED = "cancelled", _("campaign cancelled")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="messages")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="campaign_messages")
    occurrence = models.CharField(
        _("occurrence"), max_length=60, default="once",
        help_text=_("Which run of the campaign: 'once' for a broadcast, the year for a birthday, …"),
    )
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.PROTECT, related_name="messages")
    is_control = models.BooleanField(_("control group"), default=False)
    channel = models.CharField(_("channel"), max_length=5, choices=Campaign.Channel.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    skip_reason = models.CharField(_("skipped because"), max_length=12, choices=SkipReason.choices, blank=True)
    error = models.TextField(_("error"), blank=True)
    to_address = models.CharField(_("sent to"), max_length=254, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    # When the member was sent the message or set aside (holdout, skipped): the start of the
    # attribution window, the same moment for treatment and control.
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    bonus_points = models.PositiveIntegerField(_("bonus points given"), default=0)
    redemption = models.OneToOneField("rewards.Redemption", verbose_name=_("voucher"), null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="campaign_message")
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "member", "occurrence"], name="message_once_per_occurrence"),
            models.CheckConstraint(condition=Q(status="skipped") | Q(skip_reason=""), name="message_reason_if_skipped"),
            models.CheckConstraint(condition=~Q(status="skipped") | ~Q(skip_reason=""),
                                   name="message_skipped_has_reason"),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="message_campaign_status"),
            # The frequency cap: a member's recent messages.
            models.Index(fields=["member", "-claimed_at"], name="message_member_claimed"),
            # The sweeper: claims whose worker may be gone.
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="message_in_flight"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.member_id}/{self.occurrence}: {self.status}"


class RaffleEntry(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="raffle_entries")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="raffle_entries")
    points_paid = models.PositiveIntegerField(_("points paid"), default=0)
    created_at = models.DateTimeField(_("entered at"), default=timezone.now)
    won = models.BooleanField(_("won"), default=False)
    prize = models.OneToOneField("rewards.Redemption", verbose_name=_("prize voucher"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="raffle_entry")

    class Meta:
        ordering = ["campaign", "id"]
        verbose_name = _("raffle entry")
        verbose_name_plural = _("raffle entries")
        constraints = [models.UniqueConstraint(fields=["campaign", "member"], name="raffle_entry_once")]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.member_id}"
