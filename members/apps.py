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
