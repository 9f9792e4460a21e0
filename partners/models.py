"""Partners, their stores, and the partner API's models: keys, idempotency records, webhooks.

Partner and Store moved here from rewards, the others from loyalty_site: each keeps its table
(`db_table`), so the move changed no data (see partners/migrations/0001 and 0002).

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


class Partner(models.Model):
    """A business connected through the API: a till system, a web shop, a CRM."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "rewards_partner"
        ordering = ["name"]
        verbose_name = _("partner")
        verbose_name_plural = _("partners")

    def __str__(self) -> str:
        return self.name


class Store(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="stores")
    code = models.CharField(_("store code"), max_length=40)
    name = models.CharField(_("name"), max_length=120)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, default="DE")

    class Meta:
        db_table = "rewards_store"
        ordering = ["name"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        constraints = [models.UniqueConstraint(fields=["partner", "code"], name="store_code_unique_per_partner")]

    def __str__(self) -> str:
        return self.name


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
    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.CASCADE,
                                related_name="api_keys")
    scopes = models.JSONField(_("scopes"), default=list, blank=True,
                              help_text=_("What the key may do, e.g. members:read, purchases:write."))
    stores = models.ManyToManyField(Store, verbose_name=_("restricted to stores"), blank=True,
                                    related_name="+", help_text=_("Empty: all of the partner's stores."))

    objects = PartnerAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        db_table = "loyalty_site_partnerapikey"  # the M2M table stays loyalty_site_partnerapikey_stores
        verbose_name = _("partner API key")
        verbose_name_plural = _("partner API keys")

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    """The stored first answer to (partner, Idempotency-Key). Only successful responses are
    kept: a request that failed changed nothing, so a corrected retry must run."""

    # No index of its own: the unique (partner, key) serves it, and a planner that chose the
    # partner index while the table was small kept scanning all of a partner's records.
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(_("idempotency key"), max_length=255)
    fingerprint = models.CharField(_("request fingerprint (SHA-256)"), max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    response_status = models.PositiveSmallIntegerField(_("response status"))
    response_body = models.TextField(_("response body"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        db_table = "loyalty_site_idempotencyrecord"
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
    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.CASCADE,
                                related_name="webhook_subscriptions")
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(_("signing secret"), max_length=80, default=generate_webhook_secret, editable=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "loyalty_site_webhooksubscription"
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
        db_table = "loyalty_site_webhookdelivery"
        ordering = ["-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [models.Index(fields=["subscription", "-id"], name="webhook_delivery_history")]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription.url} ({self.get_status_display()})"

