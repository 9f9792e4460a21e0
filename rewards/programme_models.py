"""The programme's settings that the programme manager changes in the console (one row).

Imported by rewards.models (the app's models live there for Django). Read through
`rewards.programme` (a per-process copy under a version stamp), never directly on a hot path.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SINGLETON_ID = 1
RETURN_WINDOW_MAX_DAYS = 365


class ProgrammeSettings(models.Model):
    """One row (id 1). While there is none, the server's settings (LOYALTY_*) apply."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    return_window_days = models.PositiveSmallIntegerField(
        _("return window (days)"), validators=[MaxValueValidator(RETURN_WINDOW_MAX_DAYS)],
        help_text=_("Points of a purchase stay pending for this many days, so that a return within them takes "
                    "back points the member has not been able to spend; 0: points are available at once. "
                    "A change applies to purchases recorded after it: purchases already recorded keep the day "
                    "their points become available."))
    updated_at = models.DateTimeField(_("changed at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("programme settings")
        verbose_name_plural = _("programme settings")
        constraints = [
            models.CheckConstraint(condition=Q(id=SINGLETON_ID), name="programme_settings_single_row"),
            models.CheckConstraint(condition=Q(return_window_days__lte=RETURN_WINDOW_MAX_DAYS),
                                   name="programme_return_window_bounded"),
        ]

    def __str__(self) -> str:
        return str(_("Programme settings"))
