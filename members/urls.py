"""The member portal (namespace "portal"), mounted at the site root in loyalty_site/urls.py together
with rewards.urls (the points and vouchers pages of the same namespace)."""

from django.urls import path

from . import pwa, views

urlpatterns = [
    path("", views.home, name="home"),
    path("newsletter/bestaetigen/<str:token>/", views.consent_confirm, name="consent_confirm"),
    path("e-mail/bestaetigen/<str:token>/", views.email_confirm, name="email_confirm"),
    path("konto/", views.dashboard, name="dashboard"),
    path("konto/karte/", views.card, name="card"),
    path("konto/karte/code/", views.member_code, name="member_code"),
    path("konto/karte/apple-wallet/", views.wallet_apple, name="wallet_apple"),
    path("konto/karte/google-wallet/", views.wallet_google, name="wallet_google"),
    path("konto/profil/", views.profile, name="profile"),
    path("konto/profil/kommunikation/", views.preferences, name="preferences"),
    path("konto/push/anmelden/", views.push_subscribe, name="push_subscribe"),
    path("konto/push/abmelden/", views.push_unsubscribe, name="push_unsubscribe"),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("offline/", pwa.offline, name="offline"),
    path("konto/datenschutz/", views.privacy, name="privacy"),
    path("konto/datenschutz/export/", views.privacy_export, name="export"),
    path("konto/datenschutz/loeschen/", views.account_delete, name="delete"),
]
