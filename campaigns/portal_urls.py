"""The raffles of the member portal (namespace "raffles"), inside i18n_patterns."""

from django.urls import path

from . import views

app_name = "raffles"

urlpatterns = [
    path("konto/verlosungen/", views.portal, name="portal"),
    path("konto/verlosungen/<int:pk>/teilnehmen/", views.portal_enter, name="enter"),
]
