from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class LoyaltySiteConfig(AppConfig):
    """Cross-cutting infrastructure: partner API keys, idempotency, webhooks, dashboard figures."""

    name = "loyalty_site"
    label = "loyalty_site"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from .audit import register_audited_models
        from .schedules import ensure_periodic_tasks

        # After the members app's migrate, as always: the beat tables exist by then, and this app
        # may have no models of its own (post_migrate is sent only for apps with models).
        post_migrate.connect(ensure_periodic_tasks, sender=self.apps.get_app_config("members"),
                             dispatch_uid="loyalty_periodic_tasks")

        register_audited_models()
        # Celery finds `<app>.tasks` by itself; the API's tasks live with their code. The
        # authentication module connects the key cache's invalidation signals in every process.
        from .api import authentication, idempotency, webhooks  # noqa: F401
