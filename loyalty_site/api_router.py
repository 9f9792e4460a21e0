"""The API's router: every app registers its viewsets here through its `api.register(router)`.

A new app adds its module to API_MODULES; the schema, authentication, idempotency and error
handling (partners/api/) apply to it without further work.
"""

from __future__ import annotations

from importlib import import_module

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from partners.api.exceptions import api_not_found

API_MODULES = [
    "members.api",
    "rewards.api",
    "referrals.api",
    "feedback.api",
    "engagement.api",
    "offers.api",
    "partners.api.webhooks",
]

router = SimpleRouter()
for module in API_MODULES:
    import_module(module).register(router)

urlpatterns = [
    *router.urls,
    re_path(r"^.*$", api_not_found),  # an unknown API URL answers in the API's error shape
]
