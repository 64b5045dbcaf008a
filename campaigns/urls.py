from django.urls import include, path

urlpatterns = [
    path("contacts/", include("campaigns.urls_contacts")),
    path("", include("campaigns.urls_campaigns")),
]
