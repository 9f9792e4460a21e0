"""Referral pages (namespace "referrals"), mounted with the portal in loyalty_site/urls.py."""

from django.urls import path

from . import views

app_name = "referrals"

urlpatterns = [
    path("r/<str:code>", views.share_link, name="share"),
    path("konto/freunde-werben/", views.portal, name="portal"),
]
