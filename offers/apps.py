from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OffersConfig(AppConfig):
    """Personalised coupons (activatable offers): a member activates one, the next matching
    purchase applies it."""

    name = "offers"
    verbose_name = _("Personalised coupons")
