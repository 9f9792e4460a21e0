"""The programme settings the console changes (rewards.programme_models.ProgrammeSettings):
one typed accessor per setting, and the service that changes them.

Every purchase asks for the return window, so each process keeps a copy of the row under a
version stamp in the shared cache (as rewards.rule_cache does for the rules): one cache read
per call, no query; a save replaces the stamp and every web and worker process reloads on its
next call. While no row exists (a new installation, and the tests) the server's setting
LOYALTY_RETURN_WINDOW_DAYS applies, read at call time so that `override_settings` works.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from core.shared_version import SharedVersion

from .programme_models import SINGLETON_ID, ProgrammeSettings

VERSION = SharedVersion("loyalty:programme-settings-version")
_local: dict = {"version": None, "row": None}


def _current_row() -> ProgrammeSettings | None:
    version = VERSION.current()
    if _local["version"] != version:
        _local.update(version=version, row=ProgrammeSettings.objects.filter(pk=SINGLETON_ID).first())
    return _local["row"]


def return_window_days() -> int:
    """Days a purchase's points stay pending (0: available at once). Applies to purchases
    recorded from now on; a recorded purchase keeps its `available_at`."""
    row = _current_row()
    return row.return_window_days if row is not None else int(settings.LOYALTY_RETURN_WINDOW_DAYS)


def programme_settings_initial() -> dict:
    """What the console's form starts with while there is no row: the server's settings."""
    return {"return_window_days": int(settings.LOYALTY_RETURN_WINDOW_DAYS)}


@transaction.atomic
def programme_settings_update(*, return_window_days: int,
                              staff_user: AbstractBaseUser | None = None) -> ProgrammeSettings:
    """Create or change the one settings row (locked, so two saves run one after the other).
    The audit trail (django-auditlog, loyalty_site.audit) records who changed what."""
    row = ProgrammeSettings.objects.select_for_update().filter(pk=SINGLETON_ID).first()
    if row is None:
        row = ProgrammeSettings(pk=SINGLETON_ID)
    row.return_window_days = return_window_days
    row.updated_at = timezone.now()
    row.full_clean()
    row.save()
    return row


@receiver([post_save, post_delete], sender=ProgrammeSettings)
def _settings_changed(**kwargs) -> None:
    VERSION.bump_now_and_on_commit()
