from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self) -> None:
        # A verified portal login gets its member (linked by e-mail or enrolled): members.adapters.
        from allauth.account.signals import email_confirmed

        from .adapters import member_for_confirmed_email

        email_confirmed.connect(member_for_confirmed_email, dispatch_uid="loyalty_member_for_confirmed_email")

        # Customer lists are imported and members exported through transfers; the importer
        # and the export's columns live with the models.
        from transfers.exports import register_export
        from transfers.importers import register
        from transfers.models import ExportLog

        from .importers import MemberImporter
        from .resources import MemberResource

        register(MemberImporter)
        register_export(ExportLog.Kind.MEMBERS, resource=MemberResource, permissions=("members.export_personal_data",))

        # Domain events → webhook deliveries (every event, whichever app publishes it);
        # wallet passes half set up, or with credentials that fail: a warning, not an error.
        from django.core import checks

        from . import announcements  # noqa: F401
        from .wallet import check_wallet_settings

        checks.register(check_wallet_settings)
