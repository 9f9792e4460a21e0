from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Points and rewards")

    def ready(self) -> None:
        from . import (
            privacy,  # noqa: F401 - its sections of the member data export (members.gdpr)
            rule_cache,  # noqa: F401 - connects the invalidation signals
            subscribers,  # noqa: F401 - registers the event handlers
            views,  # noqa: F401 - the points side of members' portal pages (members.portal)
        )
