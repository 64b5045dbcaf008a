from django.urls import path

from campaigns import views_contacts as views

app_name = "contacts"

urlpatterns = [
    path("", views.contact_list, name="list"),
    path("<int:pk>/", views.contact_detail, name="detail"),
    path("export.csv", views.contact_export, name="export"),
    path("opt-outs/", views.opt_outs, name="opt_outs"),
    path("lists/", views.list_index, name="lists"),
    path("lists/new/", views.list_create, name="list_create"),
    path("lists/<int:pk>/edit/", views.list_edit, name="list_edit"),
    path("import/", views.import_upload, name="import"),
    path("import/<int:pk>/mapping/", views.import_mapping, name="import_mapping"),
    path("import/<int:pk>/", views.import_status, name="import_status"),
    path("import/<int:pk>/progress/", views.import_progress, name="import_progress"),
    path("import/<int:pk>/errors.csv", views.import_report, name="import_report"),
]
