"""The REST API under /api/v1/: the router with one registration per resource, the OpenAPI schema,
Swagger UI and ReDoc (api/docs.py: the drf-spectacular sidecar's local static files, nothing loaded
from the internet, a bar back to the console).

Included once from config/urls.py with ``path("api/v1/", include("api.urls"))``.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from api.campaigns import CampaignViewSet
from api.contacts import ContactViewSet
from api.docs import ApiRedocView, ApiSwaggerView
from api.errors import json_not_found
from api.inbound import InboundMessageViewSet
from api.lists import ContactListViewSet
from api.messages import MessageViewSet

app_name = "api"


class ApiRouter(DefaultRouter):
    include_root_view = False


router = ApiRouter()
router.register("messages", MessageViewSet, basename="message")
router.register("contacts", ContactViewSet, basename="contact")
router.register("lists", ContactListViewSet, basename="list")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("inbound", InboundMessageViewSet, basename="inbound")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", ApiSwaggerView.as_view(url_name="api:schema"), name="swagger-ui"),
    path("redoc/", ApiRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include(router.urls)),
    re_path(r"^[\s\S]*$", json_not_found),
]
