"""The feedback pages of the member portal (namespace "feedback"), inside i18n_patterns."""

from django.urls import path

from . import views

app_name = "feedback"

urlpatterns = [
    path("konto/feedback/", views.portal, name="portal"),
    path("konto/feedback/umfrage/<int:pk>/", views.answer, name="answer"),
    path("konto/feedback/reklamation/neu/", views.complaint_new, name="complaint_new"),
    path("konto/feedback/reklamation/<int:pk>/", views.complaint, name="complaint"),
]
