"""Portal pages of offers (namespace "offers"), mounted with the portal in loyalty_site/urls.py."""

from django.urls import path  # noqa: F401 - the pages come with the feature

app_name = "offers"

urlpatterns: list = []
