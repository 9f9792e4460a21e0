"""Members, tiers, consents.

`Member.points_balance` (available points) and `points_pending` (points held for the return
window) are caches of the ledger in `rewards`; only `rewards.ledger` writes the balance, with the
member row locked, in the transaction that writes the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.translation import TranslatedFieldsMixin, translated
from core.validators import LONG_TEXT_MAX, validate_birth_date


class TierQuerySet(models.QuerySet):
    def points_based(self) -> TierQuerySet:
        return self.filter(kind=Tier.Kind.POINTS)

    def memberships(self) -> TierQuerySet:
        """Tiers held by a membership (paid or by invitation), never reached by points."""
        return self.exclude(kind=Tier.Kind.POINTS)


class Tier(TranslatedFieldsMixin, models.Model):
    """A step of the ladder. Points tiers are reached by qualifying points; a paid tier (a VIP
    membership for a yearly fee) and an invitation tier are held only through a membership
    (rewards.models.TierMembership). `rank` orders all of them: a member holds the highest of
    their points tier and their active memberships."""

    class Kind(models.TextChoices):
        POINTS = "points", _("reached by points")
        PAID = "paid", _("paid membership")
        INVITATION = "invitation", _("by invitation")

    name_de = models.CharField(_("name (German)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80, blank=True)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True, help_text=_("0 is the entry tier."))
    threshold_points = models.PositiveIntegerField(
        _("qualifying points"), default=0, help_text=_("Points earned in the last 12 months to reach this tier.")
    )
    earn_multiplier = models.DecimalField(_("earn multiplier"), max_digits=4, decimal_places=2, default=Decimal("1.00"),
                                          validators=[MinValueValidator(1)])
    discount_percent = models.DecimalField(
        _("member discount (%)"), max_digits=4, decimal_places=2, default=Decimal("0.00"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    benefits_de = models.TextField(_("benefits (German)"), blank=True, max_length=LONG_TEXT_MAX)
    benefits_en = models.TextField(_("benefits (English)"), blank=True, max_length=LONG_TEXT_MAX)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.POINTS,
                            db_default=Kind.POINTS)
    fee_amount = models.DecimalField(_("yearly fee"), max_digits=9, decimal_places=2, null=True, blank=True,
                                     validators=[MinValueValidator(Decimal("0.01"))],
                                     help_text=_("Only for a paid tier: what the membership costs."))
    fee_currency = models.CharField(_("fee currency"), max_length=3, choices=[("EUR", "EUR"), ("CHF", "CHF")],
                                    blank=True)
    duration_months = models.PositiveSmallIntegerField(
        _("duration (months)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("Only for a paid tier: how long a membership runs, e.g. 12."))

    objects = TierQuerySet.as_manager()

    class Meta:
        ordering = ["rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.CheckConstraint(condition=Q(earn_multiplier__gte=1), name="tier_multiplier_at_least_one"),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0, discount_percent__lte=100), name="tier_discount_is_percent"
            ),
            # A paid tier has a positive fee in a currency and a duration; the others have neither.
            models.CheckConstraint(
                condition=(Q(kind="paid", fee_amount__gt=0, duration_months__gt=0) & ~Q(fee_currency=""))
                | (Q(fee_amount__isnull=True, duration_months__isnull=True, fee_currency="") & ~Q(kind="paid")),
                name="tier_fee_only_for_paid",
            ),
            # Nobody reaches a membership tier by points: its threshold stays 0.
            models.CheckConstraint(condition=Q(kind="points") | Q(threshold_points=0),
                                   name="tier_membership_no_threshold"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == self.Kind.PAID:
            if not self.fee_amount or self.fee_amount <= 0:
                errors["fee_amount"] = _("A paid tier needs a yearly fee above zero.")
            if not self.fee_currency:
                errors["fee_currency"] = _("A paid tier needs the fee's currency.")
            if not self.duration_months:
                errors["duration_months"] = _("A paid tier needs a duration.")
        else:
            for field in ("fee_amount", "duration_months"):
                if getattr(self, field) is not None:
                    errors[field] = _("Only a paid tier has a fee and a duration.")
            if self.fee_currency:
                errors["fee_currency"] = _("Only a paid tier has a fee and a duration.")
        if self.kind != self.Kind.POINTS and self.threshold_points:
            errors["threshold_points"] = _("A paid or invitation tier is not reached by points: leave this at 0.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_membership(self) -> bool:
        return self.kind != self.Kind.POINTS

    name = translated()

    benefits = translated()


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


def generate_card_number() -> str:
    """16 digits: issuer prefix 9276, 11 random digits, a Luhn check digit (what tills expect)."""
    body = "9276" + "".join(secrets.choice("0123456789") for _ in range(11))
    return body + luhn_check_digit(body)


# A doubled digit's digit sum (7 → 14 → 5), as a translation table: an import makes a card
# number per new member, and the loop over the digits cost more than drawing the number.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_check_digit(digits: str) -> str:
    reverse = digits[::-1]
    doubled = reverse[0::2].translate(_LUHN_DOUBLED)  # from the right: the 1st, 3rd, … digit is doubled
    total = sum(doubled.encode()) + sum(reverse[1::2].encode()) - 48 * len(digits)  # b"0" is 48
    return str((10 - total % 10) % 10)


def generate_customer_number() -> str:
    return "K" + "".join(secrets.choice("0123456789") for _ in range(9))


class MemberQuerySet(models.QuerySet):
    def active(self) -> MemberQuerySet:
        return self.filter(status=Member.Status.ACTIVE)

    def find(self, identifier: str) -> MemberQuerySet:
        """A member by card number, customer number or e-mail (what a till or shop has)."""
        identifier = identifier.strip()
        return self.filter(
            Q(card_number=identifier) | Q(customer_number=identifier) | Q(email__iexact=identifier)
        )


class Member(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        BLOCKED = "blocked", _("blocked")
        CLOSED = "closed", _("closed")
        MERGED = "merged", _("merged")
        ERASED = "erased", _("erased")

    class Salutation(models.TextChoices):
        NONE = "", _("none")
        MS = "ms", _("Ms")
        MR = "mr", _("Mr")
        DIVERSE = "diverse", _("diverse")

    class Language(models.TextChoices):
        GERMAN = "de", _("German")
        ENGLISH = "en", _("English")

    # Unique through Meta.constraints, not unique=True: for that Django also adds a second
    # (varchar_pattern_ops) index for LIKE queries, which nothing runs on these numbers (look-ups
    # are exact), and which every new member (a million in a large import) had to be written into.
    customer_number = models.CharField(_("customer number"), max_length=40, default=generate_customer_number)
    card_number = models.CharField(_("card number"), max_length=32, default=generate_card_number)
    # The member's id in the partner API: random, so ids can't be counted through (1, 2, 3 …).
    # The primary key stays internal (foreign keys, the console, imports).
    public_id = models.UUIDField(_("API id"), default=uuid.uuid4, editable=False)
    email = models.EmailField(_("e-mail"), blank=True)
    # False while an address that staff typed into the console waits for its owner to confirm it
    # (members.services.member_email_changed_by_staff): until then a portal sign-up with that
    # address cannot take over this member. Addresses from tills, imports and the portal stay
    # True, as before. db_default: the bulk import's COPY does not name the column.
    email_confirmed = models.BooleanField(_("e-mail confirmed"), default=True, db_default=True, editable=False)
    salutation = models.CharField(_("salutation"), max_length=10, choices=Salutation.choices, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True, validators=[validate_birth_date])
    street = models.CharField(_("street"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, default="DE", help_text=_("ISO 3166 code, e.g. DE, AT, CH."))
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, default=Language.GERMAN)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    joined_at = models.DateTimeField(_("joined at"), default=timezone.now)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("portal account"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="member",
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="members")
    # Indexed by member_tier_joined (tier first); merged_into only where set (member_merged_into).
    # Every index here is written again on each update that is not HOT: keep them few.
    tier = models.ForeignKey(Tier, verbose_name=_("tier"), null=True, blank=True, on_delete=models.PROTECT,
                             related_name="members", db_index=False)
    tier_granted_until = models.DateField(
        _("tier granted until"), null=True, blank=True,
        help_text=_("A tier staff granted for a period falls back to the earned tier after this day (paid and "
                    "invitation tiers are memberships: see below)."),
    )
    points_balance = models.BigIntegerField(_("available points"), default=0, editable=False)
    points_pending = models.BigIntegerField(_("pending points"), default=0, editable=False)
    # Purchase statistics for segmentation, kept by the purchase service (spend in EUR equivalent).
    last_purchase_at = models.DateTimeField(_("last purchase"), null=True, blank=True, editable=False)
    retention_warned_at = models.DateTimeField(
        _("deletion warning sent"), null=True, blank=True, editable=False,
        help_text=_("Inactive for the retention period: erased after the warning period unless active again."))
    purchases_12m = models.PositiveIntegerField(_("purchases (12 months)"), default=0, editable=False)
    spend_12m = models.DecimalField(_("spend (12 months, EUR)"), max_digits=14, decimal_places=2,
                                    default=Decimal("0"), editable=False)
    lifetime_spend = models.DecimalField(_("lifetime spend (EUR)"), max_digits=14, decimal_places=2,
                                         default=Decimal("0"), editable=False)
    merged_into = models.ForeignKey("self", verbose_name=_("merged into"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="merged_members", editable=False,
                                    db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MemberQuerySet.as_manager()

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-joined_at", "-id"]
        permissions = [
            ("adjust_points", _("Can adjust a member's points")),
            ("override_tier", _("Can override a member's tier")),
            ("merge_members", _("Can merge duplicate members")),
            ("block_member", _("Can block and unblock members")),
            ("adjust_points_unlimited", _("Can adjust points beyond the support limit")),
            ("export_personal_data", _("Can export members' personal data")),
            ("export_member_data", _("Can hand a member their data (access request, Art. 15 DSGVO)")),
            ("erase_member", _("Can erase a member (Art. 17 DSGVO)")),
            ("export_ledger", _("Can export the ledger")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points_balance__gte=0), name="member_balance_not_negative"),
            models.CheckConstraint(condition=Q(points_pending__gte=0), name="member_pending_not_negative"),
            models.UniqueConstraint(Lower("email"), condition=~Q(email=""), name="member_email_unique_ci"),
            models.UniqueConstraint(fields=["customer_number"], name="member_customer_number_unique"),
            models.UniqueConstraint(fields=["card_number"], name="member_card_number_unique"),
            models.UniqueConstraint(fields=["public_id"], name="member_public_id_unique"),
        ]
        # Nothing a purchase or the expiry job changes is indexed (last purchase, balances,
        # statistics), so their updates stay HOT: written on the row's page, no index entries.
        # Segments on those columns read the table, which at a million members is fast enough.
        indexes = [
            models.Index(fields=["-joined_at", "-id"], name="member_joined"),
            models.Index(fields=["status", "-joined_at"], name="member_status_joined"),
            models.Index(fields=["tier", "-joined_at"], name="member_tier_joined"),
            models.Index(fields=["merged_into"], condition=Q(merged_into__isnull=False), name="member_merged_into"),
            models.Index(fields=["country", "-joined_at"], name="member_country_joined"),
            # The active members' keys alone: segment counts join a member list (`id IN (…)`)
            # with `Member.objects.active()`, and each probe then reads this index only, not the
            # wide member row for its status (issue #24).
            models.Index(fields=["id"], condition=Q(status="active"), name="member_active"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name or self.email or '-'} ({self.customer_number})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class TierHistory(models.Model):
    class Cause(models.TextChoices):
        ENROLMENT = "enrolment", _("enrolment")
        EARNED = "earned", _("earned")
        REVIEW = "review", _("yearly review")
        STAFF = "staff", _("staff override")
        GRANT = "grant", _("granted for a period")
        GRANT_ENDED = "grant_ended", _("grant ended")
        MERGE = "merge", _("merge")
        PAID = "paid", _("paid membership")
        INVITATION = "invitation", _("invitation")
        MEMBERSHIP_ENDED = "membership_ended", _("membership ended")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_history")
    # from_tier and created_by are empty on most rows (every enrolment, every import, every job):
    # indexed only where set (tier_history_from_tier, tier_history_staff), which is all that
    # deleting a tier (PROTECT) or a user (SET NULL) looks for.
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                  db_index=False)
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    cause = models.CharField(_("cause"), max_length=20, choices=Cause.choices)
    reason = models.TextField(_("reason"), blank=True)
    qualifying_points = models.BigIntegerField(_("qualifying points"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier history")
        indexes = [
            models.Index(fields=["from_tier"], condition=Q(from_tier__isnull=False), name="tier_history_from_tier"),
            models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="tier_history_staff"),
        ]

    def __str__(self) -> str:
        return f"{self.from_tier or '-'} → {self.to_tier or '-'} ({self.get_cause_display()})"


class ConsentRecord(models.Model):
    """Append-only proof (Art. 7 DSGVO): the latest record per purpose is the member's consent."""

    class Purpose(models.TextChoices):
        EMAIL = "email", _("marketing e-mail")
        SMS = "sms", _("marketing SMS")
        PERSONALISED = "personalised", _("personalised offers")
        PUSH = "push", _("push notifications")

    class Source(models.TextChoices):
        PORTAL = "portal", _("portal")
        IMPORT = "import", _("import")
        API = "api", _("API")
        STAFF = "staff", _("staff")
        UNSUBSCRIBE = "unsubscribe", _("unsubscribe link")

    # Indexed by consent_latest (member first), as its foreign key needs.
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consents", db_index=False)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    text_version = models.CharField(_("text version"), max_length=40, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("double opt-in confirmed"), null=True, blank=True)
    # Looked up exactly (the confirmation link): one plain index (consent_token), not db_index's
    # second varchar_pattern_ops one for LIKE, which every record (an import's too) was written into.
    confirmation_token = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        indexes = [
            models.Index(fields=["member", "purpose", "-created_at"], name="consent_latest"),
            models.Index(fields=["confirmation_token"], name="consent_token"),
            # Staff recorded few of them (imports, the portal and the API record without): where set only.
            models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="consent_staff"),
        ]

    def __str__(self) -> str:
        state = _("granted") if self.granted else _("withdrawn")
        return f"{self.get_purpose_display()}: {state}"

    @property
    def is_effective(self) -> bool:
        """E-mail marketing counts only after double opt-in; other purposes at once."""
        if not self.granted:
            return False
        return self.purpose != self.Purpose.EMAIL or self.confirmed_at is not None


class ConsentState(models.Model):
    """Whether each member's latest consent record for a purpose is effective (ConsentRecord.
    is_effective): kept by PostgreSQL triggers on the consent records (migration
    0023_consent_state), never written by Python. Segments ask "has consented" of a million
    members at once; reading the latest record of each from the history took about a second."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=20, choices=ConsentRecord.Purpose.choices)
    effective = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "purpose"], name="consent_state_unique")]
        indexes = [models.Index(fields=["purpose", "member"], condition=Q(effective=True),
                                name="consent_state_effective")]

    def __str__(self) -> str:
        return f"{self.member_id}:{self.purpose}={self.effective}"


class PushSubscription(models.Model):
    """One device (a browser) on which the member switched on push notifications: what the
    browser's PushManager handed us (the push service's endpoint URL and the keys to encrypt
    for it). Written by members.push; a push service answering 404/410 deletes the row."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="push_subscriptions")
    endpoint = models.URLField(_("push service endpoint"), max_length=1000)
    p256dh = models.CharField(_("device public key"), max_length=120)
    auth = models.CharField(_("device auth secret"), max_length=60)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_success_at = models.DateTimeField(_("last delivered"), null=True, blank=True)
    failures = models.PositiveSmallIntegerField(_("failures in a row"), default=0)

    class Meta:
        ordering = ["member", "-created_at"]
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")
        constraints = [models.UniqueConstraint(fields=["endpoint"], name="push_subscription_endpoint_unique")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.endpoint[:40]}…"


class MemberMerge(models.Model):
    """The record of a merge: which duplicate went into which survivor, what moved, who did it."""

    survivor = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="merges_received")
    duplicate = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="merge_record")
    points_moved = models.BigIntegerField(_("points moved"))
    pending_moved = models.BigIntegerField(_("pending points moved"))
    purchases_moved = models.PositiveIntegerField(_("purchases moved"))
    reason = models.TextField(_("reason"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("member merge")
        verbose_name_plural = _("member merges")

    def __str__(self) -> str:
        return f"{self.duplicate_id} → {self.survivor_id}"


class PrivacyRequest(models.Model):
    """The audit trail of data protection requests (Art. 5(2) DSGVO): who exported or erased
    which member, when, and through which channel. It holds no personal data of its own (the
    member is a number and stays anonymised; the staff user or partner acted for the programme),
    so it is kept after the erasure it proves."""

    class Kind(models.TextChoices):
        EXPORT = "export", _("data export (Art. 15/20)")
        ERASURE = "erasure", _("erasure (Art. 17)")

    class Channel(models.TextChoices):
        PORTAL = "portal", _("member portal")
        CONSOLE = "console", _("operator console")
        API = "api", _("partner API")
        RETENTION = "retention", _("retention job")

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="privacy_requests")
    kind = models.CharField(_("request"), max_length=10, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("staff user"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    partner = models.ForeignKey("partners.Partner", verbose_name=_("partner"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("data protection request")
        verbose_name_plural = _("data protection requests")
        indexes = [models.Index(fields=["member", "-created_at"], name="privacy_request_member")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: #{self.member_id} ({self.get_channel_display()})"
class PartnerRelation(models.Model):
    """A partner knows a member: the member enrolled or bought there (at a store, or without one,
    e.g. in a web shop). The partner API shows a partner only members it is related to, or who
    are present (card or customer number, or a member code, in the request): see
    `members.selectors.members_visible_to`. Written once per (member, partner, store), by the
    enrolment and purchase services."""

    class Via(models.TextChoices):
        ENROLMENT = "enrolment", _("enrolment")
        PURCHASE = "purchase", _("purchase")

    # Indexed by relation_unique (member first): the look-up "is this member related to this
    # partner?" is one probe of it. No further indexes: a purchase may write a row.
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="partner_relations", db_index=False)
    partner = models.ForeignKey("partners.Partner", verbose_name=_("partner"), on_delete=models.CASCADE,
                                related_name="+", db_index=False)
    store = models.ForeignKey("partners.Store", verbose_name=_("store"), null=True, blank=True,
                              on_delete=models.CASCADE, related_name="+", db_index=False)
    via = models.CharField(_("how"), max_length=10, choices=Via.choices)
    created_at = models.DateTimeField(_("since"), default=timezone.now)

    class Meta:
        verbose_name = _("partner relation")
        verbose_name_plural = _("partner relations")
        constraints = [
            # COALESCE: one row per (member, partner) without a store too (NULLs are distinct in
            # a plain unique index).
            models.UniqueConstraint("member", "partner", Coalesce("store", 0), name="relation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}/{self.store_id or '-'}: {self.member_id}"


# Crockford's base32: no I, L, O or U, so a code read out or typed at a till is not misread.
MEMBER_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MEMBER_CODE_LENGTH = 10  # 50 random bits
_MEMBER_CODE_TYPOS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def generate_member_code() -> str:
    return "".join(secrets.choice(MEMBER_CODE_ALPHABET) for _ in range(MEMBER_CODE_LENGTH))


def format_member_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def normalize_member_code(typed: str) -> str:
    """A code as typed or scanned (spaces, dashes, lower case, O for 0 are fine); "" if it can't be one."""
    code = "".join(typed.split()).replace("-", "").upper().translate(_MEMBER_CODE_TYPOS)
    if len(code) != MEMBER_CODE_LENGTH or any(char not in MEMBER_CODE_ALPHABET for char in code):
        return ""
    return code


def hash_member_code(code: str) -> str:
    """What is stored of a member code: its keyed hash (a database copy shows no live code)."""
    return hmac.new(settings.SECRET_KEY.encode(), f"member-code:{code}".encode(), hashlib.sha256).hexdigest()


class MemberCode(models.Model):
    """A short-lived code the member shows in the portal (text and QR): proof for a partner that
    the member is present, like a scanned card. Single purpose (only the partner API's presence
    check reads it), unguessable (50 random bits), valid for LOYALTY_MEMBER_CODE_MINUTES; only
    its hash is stored, and a new code replaces the member's previous one."""

    class Purpose(models.TextChoices):
        PRESENCE = "presence", _("presence at a partner")

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="codes")
    purpose = models.CharField(_("purpose"), max_length=10, choices=Purpose.choices, default=Purpose.PRESENCE)
    code_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(_("valid until"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("member code")
        verbose_name_plural = _("member codes")
        constraints = [models.UniqueConstraint(fields=["code_hash"], name="member_code_hash_unique")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.get_purpose_display()}"
