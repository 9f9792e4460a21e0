"""Portal pages of engagement (namespace "engagement"), mounted with the portal in loyalty_site/urls.py."""

from django.urls import path  # noqa: F401 - the pages come with the feature

app_name = "engagement"

urlpatterns: list = []
