from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self) -> None:
        from loyalty_site.schedules import ensure_periodic_tasks

        from .roles import ensure_group_permissions

        post_migrate.connect(ensure_periodic_tasks, sender=self, dispatch_uid="loyalty_periodic_tasks")
        # Without a sender: runs after each app's migrate, so later apps' permissions land too.
        post_migrate.connect(ensure_group_permissions, dispatch_uid="loyalty_group_permissions")

        # A verified portal login gets its member (linked by e-mail or enrolled): members.adapters.
        from allauth.account.signals import email_confirmed

        from .adapters import member_for_confirmed_email

        email_confirmed.connect(member_for_confirmed_email, dispatch_uid="loyalty_member_for_confirmed_email")

        # Customer lists are imported through transfers; the importer lives with the models.
        from transfers.importers import register

        from .importers import MemberImporter

        register(MemberImporter)
        from transfers.exports import register_export
        from transfers.models import ExportLog

        from .resources import MemberResource

        register_export(ExportLog.Kind.MEMBERS, resource=MemberResource, permissions=("members.export_personal_data",))
