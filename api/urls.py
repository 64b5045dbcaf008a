"""The REST API under /api/v1/: the router, the OpenAPI schema, Swagger UI and ReDoc (served from the
drf-spectacular sidecar's local static files, no CDN).

Included once from config/urls.py with ``path("api/v1/", include("api.urls"))``.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from api import contacts as campaigns_api
from api import messages as messaging_api
from api.errors import json_not_found

app_name = "api"


class ApiRouter(DefaultRouter):
    include_root_view = False


router = ApiRouter()
router.register("messages", messaging_api.MessageViewSet, basename="message")
for prefix, viewset, basename in getattr(campaigns_api, "ROUTES", []):
    router.register(prefix, viewset, basename=basename)
for prefix, viewset, basename in getattr(messaging_api, "ROUTES", []):
    router.register(prefix, viewset, basename=basename)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include(router.urls)),
    re_path(r"^[\s\S]*$", json_not_found),
]
