"""Portal pages of engagement (namespace "engagement"), mounted with the portal in loyalty_site/urls.py."""

from django.urls import path

from . import views

app_name = "engagement"

urlpatterns = [
    path("konto/challenges/", views.portal, name="portal"),
]
