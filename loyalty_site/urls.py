from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

import members.urls
import rewards.urls
from members.pwa import service_worker
from partners.api.schema import SchemaView

from .dashboard import dashboard_csv
from .health import healthz

# Admin login goes through allauth: its rate limits and its second-factor stage apply.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # The portal's service worker: at the root, so its scope covers every language prefix.
    path("sw.js", service_worker, name="service_worker"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The partner API: outside i18n_patterns (clients choose a language with Accept-Language).
    path("api/v1/", include("loyalty_site.api_router")),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, not inline (the CSP allows no
    # inline scripts); the template drops the inline <style> too.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
    # Links in campaign e-mails (unsubscribe, raffle entry): no language prefix, so a mail
    # client's one-click POST is never redirected.
    path("c/", include("campaigns.urls")),
    path("f/", include("feedback.link_urls")),  # one-click answers in survey e-mails, the same reason
]

urlpatterns += i18n_patterns(
    path("admin/dashboard/<slug:chart>.csv", admin.site.admin_view(dashboard_csv), name="dashboard_csv"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    # The member portal: one namespace, members' pages and rewards' points and vouchers pages.
    path("", include(([*members.urls.urlpatterns, *rewards.urls.urlpatterns], "portal"))),
    path("", include("referrals.urls")),
    path("", include("feedback.urls")),
    path("", include("engagement.urls")),
    path("", include("offers.urls")),
    prefix_default_language=False,
)

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# PostgreSQL down or restarting: 503 with Retry-After instead of a 500 page (loyalty_site/unavailable.py).
handler500 = "loyalty_site.unavailable.handler500"
