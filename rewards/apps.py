from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Points and rewards")

    def ready(self) -> None:
        from members.portal import page_section
        from transfers.exports import register_export
        from transfers.importers import register
        from transfers.models import ExportLog

        from . import (
            privacy,  # noqa: F401 - its sections of the member data export (members.gdpr)
            programme,  # noqa: F401 - connects the invalidation signal of the programme settings
            rule_cache,  # noqa: F401 - connects the invalidation signals
            subscribers,  # noqa: F401 - registers the event handlers
            views,  # noqa: F401 - the points side of members' portal pages (members.portal)
        )
        from .importers import PurchaseImporter, RewardImporter
        from .ledger import buyer_flags_install
        from .resources import (
            DonationTotalsResource,
            PointEntryResource,
            PurchaseResource,
            RedemptionResource,
            RewardResource,
        )

        # Purchases and the catalogue are imported and exported through transfers.
        register(PurchaseImporter)
        register(RewardImporter)
        ledger = ("members.export_ledger", "members.export_personal_data")  # customer numbers, no names
        register_export(ExportLog.Kind.LEDGER, resource=PointEntryResource, permissions=ledger)
        register_export(ExportLog.Kind.PURCHASES, resource=PurchaseResource, permissions=ledger)
        register_export(ExportLog.Kind.REDEMPTIONS, resource=RedemptionResource, permissions=ledger)
        register_export(ExportLog.Kind.REWARDS, resource=RewardResource, permissions=("rewards.view_reward",))
        register_export(ExportLog.Kind.DONATION_TOTALS, resource=DonationTotalsResource,
                        permissions=("rewards.export_donation_totals",))
        page_section("dashboard", "rewards/_dashboard_donations.html", order=80)
        # After every migrate (and every test flush): the other apps' annotations are registered by then.
        post_migrate.connect(buyer_flags_install, sender=self, dispatch_uid="rewards_buyer_flags")
