from django.urls import path

from . import views_contacts as views

app_name = "contacts"

urlpatterns = [
    path("", views.contact_list, name="list"),
]
