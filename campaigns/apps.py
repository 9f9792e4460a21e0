from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from members.portal import page_section

        from . import (
            subscribers,  # noqa: F401 - registers the event handlers and its part of the erasure
            views,  # noqa: F401 - the raffles card's data on the portal dashboard (members.portal)
        )

        page_section("dashboard", "campaigns/_dashboard_card.html", order=60)
