"""Campaign pages: list, composer (with its HTMX partials), campaign page and workflow, monitor."""

from django.urls import path

from campaigns.views import campaign_list, campaign_page, composer, monitor

app_name = "campaigns"

urlpatterns = [
    path("", campaign_list.campaign_list, name="list"),
    path("new/", composer.campaign_create, name="create"),
    path("compose/builder/", composer.compose_builder, name="compose_builder"),
    path("compose/preview/", composer.compose_preview, name="compose_preview"),
    path("compose/audience/", composer.compose_audience, name="compose_audience"),
    path("compose/media/", composer.media_upload, name="media_upload"),
    path("<int:pk>/", campaign_page.campaign_detail, name="detail"),
    path("<int:pk>/edit/", composer.campaign_edit, name="edit"),
    path("<int:pk>/test-send/", campaign_page.campaign_test_send, name="test_send"),
    path("<int:pk>/submit/", campaign_page.campaign_submit, name="submit"),
    path("<int:pk>/approve/", campaign_page.campaign_approve, name="approve"),
    path("<int:pk>/send-back/", campaign_page.campaign_send_back, name="send_back"),
    path("<int:pk>/launch/", campaign_page.campaign_launch, name="launch"),
    path("<int:pk>/monitor/", monitor.campaign_monitor, name="monitor"),
    path("<int:pk>/monitor/progress/", monitor.monitor_progress, name="monitor_progress"),
    path("<int:pk>/monitor/cost/", monitor.monitor_cost, name="monitor_cost"),
    path("<int:pk>/monitor/recipients/", monitor.monitor_recipients, name="monitor_recipients"),
    path("<int:pk>/monitor/export.csv", monitor.monitor_export, name="monitor_export"),
    path("<int:pk>/pause/", monitor.campaign_pause, name="pause"),
    path("<int:pk>/resume/", monitor.campaign_resume, name="resume"),
    path("<int:pk>/cancel/", monitor.campaign_cancel, name="cancel"),
]
