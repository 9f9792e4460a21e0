"""The member portal's points and vouchers pages: part of the "portal" namespace, which
loyalty_site/urls.py builds from members.urls and these."""

from django.urls import path

from . import views

urlpatterns = [
    path("bonusbedingungen/", views.terms, name="terms"),
    path("konto/aktivitaet/", views.activity, name="activity"),
    path("konto/praemien/", views.rewards, name="rewards"),
    path("konto/praemien/<int:pk>/einloesen/", views.reward_redeem, name="redeem"),
    path("konto/gutscheine/", views.vouchers, name="vouchers"),
    path("konto/spenden/", views.donations, name="donations"),
    path("konto/gutscheine/<int:pk>/", views.voucher, name="voucher"),
]
