from django.urls import path

from . import webhooks

app_name = "messaging"

urlpatterns: list = [
    path("webhooks/rbm/<int:gateway_id>/", webhooks.rbm_webhook, name="webhook_rbm"),
    path("webhooks/cm/<int:gateway_id>/<str:secret>/", webhooks.cm_webhook, name="webhook_cm"),
]
