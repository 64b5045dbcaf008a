"""Contact pages: contacts, the opt-out list, the export, lists and the import flow."""

from django.urls import path

from campaigns.views import contact_import, contact_lists, contacts, custom_fields, segments

app_name = "contacts"

urlpatterns = [
    path("", contacts.contact_list, name="list"),
    path("<int:pk>/", contacts.contact_detail, name="detail"),
    path("<int:pk>/fields/", custom_fields.contact_fields_edit, name="contact_fields"),
    path("segments/", segments.segment_index, name="segments"),
    path("segments/new/", segments.segment_create, name="segment_create"),
    path("segments/<int:pk>/edit/", segments.segment_edit, name="segment_edit"),
    path("segments/<int:pk>/delete/", segments.segment_delete, name="segment_delete"),
    path("segments/row/", segments.segment_row, name="segment_row"),
    path("segments/count/", segments.segment_count, name="segment_count"),
    path("fields/", custom_fields.field_index, name="fields"),
    path("fields/new/", custom_fields.field_create, name="field_create"),
    path("fields/<int:pk>/edit/", custom_fields.field_edit, name="field_edit"),
    path("export.csv", contacts.contact_export, name="export"),
    path("opt-outs/", contacts.opt_outs, name="opt_outs"),
    path("lists/", contact_lists.list_index, name="lists"),
    path("lists/new/", contact_lists.list_create, name="list_create"),
    path("lists/<int:pk>/edit/", contact_lists.list_edit, name="list_edit"),
    path("import/", contact_import.import_upload, name="import"),
    path("import/<int:pk>/mapping/", contact_import.import_mapping, name="import_mapping"),
    path("import/<int:pk>/", contact_import.import_status, name="import_status"),
    path("import/<int:pk>/progress/", contact_import.import_progress, name="import_progress"),
    path("import/<int:pk>/errors.csv", contact_import.import_report, name="import_report"),
]
