"""Campaign pages: list, composer (with its HTMX partials), campaign page and workflow, monitor."""

from django.urls import path

from campaigns import views_campaigns as views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("compose/builder/", views.compose_builder, name="compose_builder"),
    path("compose/preview/", views.compose_preview, name="compose_preview"),
    path("compose/audience/", views.compose_audience, name="compose_audience"),
    path("compose/media/", views.media_upload, name="media_upload"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/test-send/", views.campaign_test_send, name="test_send"),
    path("<int:pk>/submit/", views.campaign_submit, name="submit"),
    path("<int:pk>/approve/", views.campaign_approve, name="approve"),
    path("<int:pk>/send-back/", views.campaign_send_back, name="send_back"),
    path("<int:pk>/launch/", views.campaign_launch, name="launch"),
    path("<int:pk>/monitor/", views.campaign_monitor, name="monitor"),
    path("<int:pk>/monitor/progress/", views.monitor_progress, name="monitor_progress"),
    path("<int:pk>/monitor/recipients/", views.monitor_recipients, name="monitor_recipients"),
    path("<int:pk>/monitor/export.csv", views.monitor_export, name="monitor_export"),
    path("<int:pk>/pause/", views.campaign_pause, name="pause"),
    path("<int:pk>/resume/", views.campaign_resume, name="resume"),
    path("<int:pk>/cancel/", views.campaign_cancel, name="cancel"),
]
