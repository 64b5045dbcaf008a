from django.urls import path

from accounts import views, views_api_keys

app_name = "accounts"

urlpatterns = [
    path("switch-organization/", views.switch_organization, name="switch_organization"),
    path("official/", views.official_account_list, name="official_list"),
    path("official/new/", views.official_account_create, name="official_create"),
    path("official/<int:pk>/", views.official_account_detail, name="official_detail"),
    path("official/<int:pk>/edit/", views.official_account_edit, name="official_edit"),
    path("official/<int:pk>/logo/", views.official_account_logo, name="official_logo"),
    path("official/<int:pk>/menu/", views.fixed_menu, name="fixed_menu"),
    path("official/<int:pk>/menu/item/", views.fixed_menu_item, name="fixed_menu_item"),
    path("official/<int:pk>/menu/move/", views.fixed_menu_move, name="fixed_menu_move"),
    path("official/<int:pk>/menu/delete/", views.fixed_menu_delete, name="fixed_menu_delete"),
    path("members/", views.members, name="members"),
    path("members/<int:pk>/role/", views.member_role, name="member_role"),
    path("members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("quiet-hours/", views.quiet_hours, name="quiet_hours"),
    path("api-keys/", views_api_keys.api_keys, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", views_api_keys.api_key_revoke, name="api_key_revoke"),
    path("webhooks/", views_api_keys.webhooks, name="webhooks"),
    path("webhooks/<int:pk>/", views_api_keys.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/rotate/", views_api_keys.webhook_rotate, name="webhook_rotate"),
    path("webhooks/<int:pk>/toggle/", views_api_keys.webhook_toggle, name="webhook_toggle"),
    path("webhooks/<int:pk>/delete/", views_api_keys.webhook_delete, name="webhook_delete"),
    path("webhooks/deliveries/<int:pk>/resend/", views_api_keys.webhook_resend, name="webhook_resend"),
]
