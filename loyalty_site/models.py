"""Platform models of the partner API: keys, idempotency records and webhooks.

- `PartnerAPIKey` is djangorestframework-api-key's key model with a partner, scopes and an
  optional list of stores. Only a SHA-512 hash of the key is stored (the library's default
  hasher since 2.0: an API key has ~190 bits of entropy, so a slow password hasher would add
  tens of milliseconds to every request and no security). The key itself is shown once.
- `IdempotencyRecord` is the first response to a partner's write, stored in the transaction
  that did the work: a retry after a lost response gets exactly that response again.
- `WebhookSubscription` / `WebhookDelivery` are an outbox: a delivery row is written in the
  transaction of the change it announces and sent by Celery after the commit.
"""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.crypto import KeyGenerator
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class Scope(models.TextChoices):
    MEMBERS_READ = "members:read", _("read members, balances and ledgers")
    MEMBERS_WRITE = "members:write", _("enrol and update members")
    MEMBERS_ERASE = "members:erase", _("erase members at their request (Art. 17 DSGVO)")
    PURCHASES_READ = "purchases:read", _("read the partner's purchases")
    PURCHASES_WRITE = "purchases:write", _("post purchases and returns")
    REWARDS_READ = "rewards:read", _("read the rewards catalogue")
    VOUCHERS_REDEEM = "vouchers:redeem", _("redeem rewards, validate and consume vouchers")
    WEBHOOKS_MANAGE = "webhooks:manage", _("manage webhook subscriptions")
    FEEDBACK_READ = "feedback:read", _("read surveys and the complaints the partner opened")
    FEEDBACK_WRITE = "feedback:write", _("post survey answers (till tablets) and open complaints")


class PartnerAPIKeyManager(BaseAPIKeyManager):
    # 8 characters of prefix (the lookup) and 40 of secret: ~238 bits. Hashed with the
    # library's SHA-512 hasher (Sha512ApiKeyHasher), a fast hash, right for random keys.
    key_generator = KeyGenerator(prefix_length=8, secret_key_length=40)


class PartnerAPIKey(AbstractAPIKey):
    partner = models.ForeignKey("rewards.Partner", verbose_name=_("partner"), on_delete=models.CASCADE,
                                related_name="api_keys")
    scopes = models.JSONField(_("scopes"), default=list, blank=True,
                              help_text=_("What the key may do, e.g. members:read, purchases:write."))
    stores = models.ManyToManyField("rewards.Store", verbose_name=_("restricted to stores"), blank=True,
                                    related_name="+", help_text=_("Empty: all of the partner's stores."))

    objects = PartnerAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("partner API key")
        verbose_name_plural = _("partner API keys")

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    """The stored first answer to (partner, Idempotency-Key). Only successful responses are
    kept: a request that failed changed nothing, so a corrected retry must run."""

    partner = models.ForeignKey("rewards.Partner", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(_("idempotency key"), max_length=255)
    fingerprint = models.CharField(_("request fingerprint (SHA-256)"), max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    response_status = models.PositiveSmallIntegerField(_("response status"))
    response_body = models.TextField(_("response body"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["partner", "key"], name="idempotency_key_unique_per_partner")]

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.key}"


class WebhookEvent(models.TextChoices):
    """The domain events partners may subscribe to (their `name`): members.announcements turns
    each into deliveries for the partners it concerns."""

    MEMBER_ENROLLED = "member.enrolled", _("member enrolled")
    MEMBER_ERASED = "member.erased", _("member erased")
    PURCHASE_RECORDED = "purchase.recorded", _("purchase recorded")
    POINTS_EARNED = "points.earned", _("points earned")
    POINTS_SPENT = "points.spent", _("points spent")
    POINTS_EXPIRED = "points.expired", _("points expired")
    TIER_CHANGED = "tier.changed", _("tier changed")
    VOUCHER_ISSUED = "voucher.issued", _("voucher issued")
    VOUCHER_USED = "voucher.used", _("voucher used")
    REFERRAL_REWARDED = "referral.rewarded", _("referral rewarded")
    SURVEY_ANSWERED = "survey.answered", _("survey answered")
    COMPLAINT_CLOSED = "complaint.closed", _("complaint closed")


def generate_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSubscription(models.Model):
    partner = models.ForeignKey("rewards.Partner", verbose_name=_("partner"), on_delete=models.CASCADE,
                                related_name="webhook_subscriptions")
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(_("signing secret"), max_length=80, default=generate_webhook_secret, editable=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        indexes = [models.Index(fields=["partner", "active"], name="webhook_partner_active")]

    def __str__(self) -> str:
        return f"{self.partner}: {self.url}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")

    subscription = models.ForeignKey(WebhookSubscription, verbose_name=_("subscription"), on_delete=models.CASCADE,
                                     related_name="deliveries")
    event = models.CharField(_("event"), max_length=40, choices=WebhookEvent.choices)
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, editable=False,
                                help_text=_("The same for every attempt: receivers use it to ignore repeats."))
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [models.Index(fields=["subscription", "-id"], name="webhook_delivery_history")]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription.url} ({self.get_status_display()})"


class PartnerRedemption(models.Model):
    """Which partner (and store) issued a voucher through the API: a partner sees and cancels only
    its own, and a key restricted to stores only those of its stores."""

    partner = models.ForeignKey("rewards.Partner", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey("rewards.Store", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              db_index=False)
    redemption = models.OneToOneField("rewards.Redemption", on_delete=models.CASCADE, related_name="issued_by")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("voucher issued through the API")
        verbose_name_plural = _("vouchers issued through the API")
        indexes = [models.Index(fields=["partner", "-redemption"], name="partner_redemption_list")]

    def __str__(self) -> str:
        return f"{self.partner_id}: {self.redemption_id}"
