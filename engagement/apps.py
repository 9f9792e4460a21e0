from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EngagementConfig(AppConfig):
    """Challenges, badges and streaks: they react to the domain events of the apps below."""

    name = "engagement"
    verbose_name = _("Challenges and badges")
