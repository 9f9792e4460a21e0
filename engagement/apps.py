from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EngagementConfig(AppConfig):
    """Challenges, badges and streaks: they react to the domain events of the apps below."""

    name = "engagement"
    verbose_name = _("Challenges and badges")

    def ready(self) -> None:
        from members.portal import page_section

        from . import active, subscribers, views  # noqa: F401 - registers the signals, handlers, portal context

        page_section("dashboard", "engagement/_dashboard_card.html", order=30)
