from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltySiteConfig(AppConfig):
    """The top layer: settings, the API router, the admin site and dashboard, health. It has no
    models any more (its migrations stay as history; the models moved to partners and rewards)."""

    name = "loyalty_site"
    label = "loyalty_site"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from .audit import register_audited_models

        register_audited_models()
