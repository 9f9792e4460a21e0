"""Portal pages of offers (namespace "offers"), mounted with the portal in loyalty_site/urls.py."""

from django.urls import path

from . import views

app_name = "offers"

urlpatterns = [
    path("konto/coupons/", views.portal, name="portal"),
    path("konto/coupons/<int:pk>/aktivieren/", views.activate, name="activate"),
]
