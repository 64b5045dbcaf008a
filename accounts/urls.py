from django.urls import path

from accounts.views import (
    api_keys,
    members,
    menu_editor,
    official_accounts,
    organization,
    test_numbers,
    webhooks,
)

app_name = "accounts"

urlpatterns = [
    path("switch-organization/", organization.switch_organization, name="switch_organization"),
    path("official/", official_accounts.official_account_list, name="official_list"),
    path("official/new/", official_accounts.official_account_create, name="official_create"),
    path("official/<int:pk>/", official_accounts.official_account_detail, name="official_detail"),
    path("official/<int:pk>/edit/", official_accounts.official_account_edit, name="official_edit"),
    path("official/<int:pk>/logo/", official_accounts.official_account_logo, name="official_logo"),
    path("official/<int:pk>/menu/", menu_editor.fixed_menu, name="fixed_menu"),
    path("official/<int:pk>/menu/item/", menu_editor.fixed_menu_item, name="fixed_menu_item"),
    path("official/<int:pk>/menu/move/", menu_editor.fixed_menu_move, name="fixed_menu_move"),
    path("official/<int:pk>/menu/delete/", menu_editor.fixed_menu_delete, name="fixed_menu_delete"),
    path("members/", members.members, name="members"),
    path("members/<int:pk>/role/", members.member_role, name="member_role"),
    path("members/<int:pk>/remove/", members.member_remove, name="member_remove"),
    path("members/second-approver/", members.second_approver, name="second_approver"),
    path("quiet-hours/", organization.quiet_hours, name="quiet_hours"),
    path("frequency-cap/", organization.frequency_cap, name="frequency_cap"),
    path("retention/", organization.retention, name="retention"),
    path("opt-in-keyword/", organization.opt_in_keyword, name="opt_in_keyword"),
    path("test-numbers/", test_numbers.test_numbers, name="test_numbers"),
    path("test-numbers/<int:pk>/confirm/", test_numbers.test_number_confirm, name="test_number_confirm"),
    path("test-numbers/<int:pk>/resend/", test_numbers.test_number_resend, name="test_number_resend"),
    path("test-numbers/<int:pk>/remove/", test_numbers.test_number_remove, name="test_number_remove"),
    path("api-keys/", api_keys.api_keys, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
    path("webhooks/", webhooks.webhooks, name="webhooks"),
    path("webhooks/<int:pk>/", webhooks.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/rotate/", webhooks.webhook_rotate, name="webhook_rotate"),
    path("webhooks/<int:pk>/toggle/", webhooks.webhook_toggle, name="webhook_toggle"),
    path("webhooks/<int:pk>/delete/", webhooks.webhook_delete, name="webhook_delete"),
    path("webhooks/deliveries/<int:pk>/resend/", webhooks.webhook_resend, name="webhook_resend"),
]
