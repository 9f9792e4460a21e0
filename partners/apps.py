from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnersConfig(AppConfig):
    """Partners and stores, their API keys, idempotency records and webhooks."""

    name = "partners"
    label = "partners"
    verbose_name = _("Partners and API")

    def ready(self) -> None:
        # Celery finds `<app>.tasks` by itself; the API's tasks live with their code. The
        # authentication module connects the key cache's invalidation signals in every process.
        from . import webhooks  # noqa: F401
        from .api import authentication, idempotency  # noqa: F401
