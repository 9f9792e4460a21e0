from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("r/<str:token>/", views.raffle, name="raffle"),
]
