from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = _("Referrals")

    def ready(self) -> None:
        from allauth.account.signals import email_confirmed

        from members.portal import page_section

        from . import (
            subscribers,  # noqa: F401 - registers the event handlers
            views,  # noqa: F401 - the dashboard card's context (members.portal)
        )
        from .signals import referral_for_confirmed_email

        email_confirmed.connect(referral_for_confirmed_email, dispatch_uid="loyalty_referral_for_confirmed_email")
        page_section("dashboard", "referrals/_dashboard_card.html", order=70)
