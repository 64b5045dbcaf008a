from django.urls import path

from messaging import views_automation, views_inbox, webhooks

app_name = "messaging"

urlpatterns: list = [
    path("webhooks/rbm/<int:gateway_id>/", webhooks.rbm_webhook, name="webhook_rbm"),
    path("webhooks/cm/<int:gateway_id>/<str:secret>/", webhooks.cm_webhook, name="webhook_cm"),
    # the inbox
    path("inbox/", views_inbox.inbox_index, name="inbox"),
    path("inbox/list/", views_inbox.conversation_list_partial, name="inbox_list"),
    path("inbox/quick-replies/", views_inbox.quick_replies, name="inbox_quick_replies"),
    path("inbox/<int:pk>/", views_inbox.conversation_detail, name="inbox_conversation"),
    path("inbox/<int:pk>/thread/", views_inbox.thread_partial, name="inbox_thread"),
    path("inbox/<int:pk>/reply/", views_inbox.conversation_reply, name="inbox_reply"),
    path("inbox/<int:pk>/assign/", views_inbox.conversation_assign, name="inbox_assign"),
    path("inbox/<int:pk>/status/", views_inbox.conversation_status, name="inbox_status"),
    # inbox automation, per official account (its keyword rules by their own id)
    path("automation/<int:pk>/", views_automation.automation_page, name="automation"),
    path("automation/<int:pk>/away/", views_automation.automation_away, name="automation_away"),
    path("automation/rules/<int:pk>/toggle/", views_automation.automation_rule_toggle, name="automation_rule_toggle"),
    path("automation/rules/<int:pk>/delete/", views_automation.automation_rule_delete, name="automation_rule_delete"),
    path("inbox/<int:pk>/opt-out/", views_inbox.conversation_opt_out, name="inbox_opt_out"),
    path("inbox/media/<int:pk>/", views_inbox.message_media, name="inbox_media"),
    # tracked button links
    path("r/<str:token>/", views_inbox.tracked_link, name="tracked_link"),
]
