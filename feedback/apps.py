from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = _("Feedback")

    def ready(self) -> None:
        from campaigns.sending import contact_counters
        from transfers.exports import register_export
        from transfers.models import ExportLog

        from . import subscribers  # noqa: F401 - registers the event handlers
        from .resources import ResponseResource
        from .services import survey_contacts

        # Survey e-mails count toward the marketing frequency cap campaigns keep.
        if survey_contacts not in contact_counters:
            contact_counters.append(survey_contacts)
        # Free-text comments are personal data.
        register_export(ExportLog.Kind.SURVEY_ANSWERS, resource=ResponseResource,
                        permissions=("members.export_personal_data",))
