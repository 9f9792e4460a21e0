from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class LoyaltySiteConfig(AppConfig):
    """The top layer: settings, the API router, the admin site and dashboard, health. It has no
    models any more (its migrations stay as history; the models moved to partners and rewards)."""

    name = "loyalty_site"
    label = "loyalty_site"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from .audit import connect_request_context_receiver, register_audited_models
        from .schedules import ensure_periodic_tasks
        from .staff_security import stamp_staff_sign_in

        # After the members app's migrate, as always: the beat tables exist by then, and this app
        # may have no models of its own (post_migrate is sent only for apps with models).
        post_migrate.connect(ensure_periodic_tasks, sender=self.apps.get_app_config("members"),
                             dispatch_uid="loyalty_periodic_tasks")

        register_audited_models()
        connect_request_context_receiver()
        user_logged_in.connect(stamp_staff_sign_in, dispatch_uid="loyalty_staff_sign_in_stamp")


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the console's site (loyalty_site.admin_site) as the default
    site: every `admin.site` and `@admin.register` is that site."""

    default = False  # named in INSTALLED_APPS; "loyalty_site" still means LoyaltySiteConfig
    default_site = "loyalty_site.admin_site.ConsoleAdminSite"
