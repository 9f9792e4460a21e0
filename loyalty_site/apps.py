from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltySiteConfig(AppConfig):
    """Cross-cutting infrastructure: partner API keys, idempotency, webhooks, dashboard figures."""

    name = "loyalty_site"
    label = "loyalty_site"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from .audit import register_audited_models

        register_audited_models()
        # Celery finds `<app>.tasks` by itself; the API's tasks live with their code. The
        # authentication module connects the key cache's invalidation signals in every process.
        from .api import authentication, idempotency, webhooks  # noqa: F401
