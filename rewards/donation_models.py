"""Donation rewards as real donations: the causes members give to and what each gave.

A donation reward (`Reward.Kind.DONATION`) names its cause and its euro value per redemption
(`Reward.value`, in EUR: what the partner or the programme pays to the cause). Redeeming it
takes the points like any redemption (rewards.donations), but what the member gets is a
`Donation`, not a voucher: the `Redemption` row behind it (limits per member, stock, the
partner that redeemed it) has status DONATED, no code and no expiry date, so no till, voucher
page or expiry job ever sees it.

Imported by rewards.models (the app's models live there for Django); a module of its own so
that models.py stays readable.
"""

from __future__ import annotations

from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.translation import TranslatedFieldsMixin, translated
from core.validators import LONG_TEXT_MAX
from members.models import Member


class DonationCause(TranslatedFieldsMixin, models.Model):
    """What members can give their points to (a tree-planting project, the local food bank)."""

    name_de = models.CharField(_("name (German)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    description_de = models.TextField(_("description (German)"), blank=True, max_length=LONG_TEXT_MAX)
    description_en = models.TextField(_("description (English)"), blank=True, max_length=LONG_TEXT_MAX)
    organisation = models.CharField(_("organisation"), max_length=160,
                                    help_text=_("Who receives the money (as on the payout)."))
    website = models.URLField(_("website"), blank=True, validators=[URLValidator(schemes=["https"])])
    active = models.BooleanField(_("active"), default=True,
                                 help_text=_("Off: its rewards can no longer be redeemed; its totals stay."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name_de", "id"]
        verbose_name = _("donation cause")
        verbose_name_plural = _("donation causes")
        permissions = [("export_donation_totals", _("Can export the donation totals per cause and month"))]

    def __str__(self) -> str:
        return self.name

    name = translated()

    description = translated()


class DonationQuerySet(models.QuerySet):
    def counted(self) -> DonationQuerySet:
        """What the totals and the payout count: cancelled donations gave their points back."""
        return self.filter(cancelled_at__isnull=True)


class Donation(models.Model):
    """One redemption of a donation reward: who gave how many points, and the euros the cause gets.

    `member` becomes empty when the member is erased (members.privacy): the donation, with its
    cause, amount and date, stays for the totals and the payout."""

    member = models.ForeignKey(Member, verbose_name=_("member"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="donations")
    cause = models.ForeignKey(DonationCause, verbose_name=_("donation cause"), on_delete=models.PROTECT,
                              related_name="donations")
    reward = models.ForeignKey("rewards.Reward", verbose_name=_("reward"), on_delete=models.PROTECT,
                               related_name="+")
    redemption = models.OneToOneField("rewards.Redemption", verbose_name=_("redemption"),
                                      on_delete=models.PROTECT, related_name="donation")
    points = models.PositiveIntegerField(_("points"))
    amount = models.DecimalField(_("amount (EUR)"), max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(_("donated at"), default=timezone.now)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    objects = DonationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("donation")
        verbose_name_plural = _("donations")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="donation_amount_positive"),
        ]
        indexes = [
            # The totals per cause and period: one index range per cause, cancelled ones left out.
            models.Index(fields=["cause", "created_at"], condition=Q(cancelled_at__isnull=True),
                         name="donation_cause_time"),
            models.Index(fields=["member", "-created_at"], condition=Q(member__isnull=False),
                         name="donation_member_time"),
        ]

    def __str__(self) -> str:
        return f"{self.cause} {self.amount} EUR"
