"""The one-click links of survey e-mails (namespace "feedback_links"), mounted at "f/" outside
i18n_patterns like the campaigns' links: no language redirect between the mail and the page."""

from django.urls import path

from . import views

app_name = "feedback_links"

urlpatterns = [
    path("a/<str:token>/", views.answer_link, name="answer"),
    path("abmelden/<str:token>/", views.unsubscribe_link, name="unsubscribe"),
]
