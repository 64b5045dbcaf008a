"""Campaign pages: list, calendar, composer (with its HTMX partials), campaign page and workflow,
monitor, templates and cloning."""

from django.urls import path

from campaigns.views import calendar, campaign_list, campaign_page, campaign_templates, composer, monitor

app_name = "campaigns"

urlpatterns = [
    path("", campaign_list.campaign_list, name="list"),
    path("calendar/", calendar.campaign_calendar, name="calendar"),
    path("new/", composer.campaign_create, name="create"),
    path("compose/builder/", composer.compose_builder, name="compose_builder"),
    path("compose/preview/", composer.compose_preview, name="compose_preview"),
    path("compose/audience/", composer.compose_audience, name="compose_audience"),
    path("compose/media/", composer.media_upload, name="media_upload"),
    path("templates/", campaign_templates.template_list, name="templates"),
    path("templates/<int:pk>/rename/", campaign_templates.template_rename, name="template_rename"),
    path("templates/<int:pk>/delete/", campaign_templates.template_delete, name="template_delete"),
    path("<int:pk>/", campaign_page.campaign_detail, name="detail"),
    path("<int:pk>/save-as-template/", campaign_templates.template_save, name="template_save"),
    path("<int:pk>/clone/", campaign_templates.campaign_clone, name="clone"),
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
