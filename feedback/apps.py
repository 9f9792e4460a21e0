from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = _("Feedback")

    def ready(self) -> None:
        from transfers.exports import register_export
        from transfers.models import ExportLog

        from . import subscribers  # noqa: F401 - registers the event handlers
        from .resources import ResponseResource

        # Free-text comments are personal data.
        register_export(ExportLog.Kind.SURVEY_ANSWERS, resource=ResponseResource,
                        permissions=("members.export_personal_data",))
