from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OffersConfig(AppConfig):
    """Personalised coupons (activatable offers): a member activates one, the next matching
    purchase applies it."""

    name = "offers"
    verbose_name = _("Personalised coupons")

    def ready(self) -> None:
        from members.portal import page_section

        from . import (
            subscribers,
            views,  # noqa: F401 - the dashboard card's context (members.portal)
        )

        subscribers.register()
        page_section("dashboard", "offers/_dashboard_card.html", order=40)
