from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("r/<str:token>/", views.raffle, name="raffle"),
    path("v/<int:pk>/", views.raffle_proof, name="raffle_proof"),
    path("v/<int:pk>/tickets.txt", views.raffle_tickets_text, name="raffle_tickets"),
]
