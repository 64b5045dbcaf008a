from django.contrib import admin

from accounts.admin_scoping import OrgScopedAdmin
from messaging.models import Delivery, ProviderEvent


@admin.register(Delivery)
class DeliveryAdmin(OrgScopedAdmin):
    list_display = ["uuid", "campaign", "contact", "channel", "status", "fallback_reason", "error_code", "sent_at"]
    list_filter = ["channel", "status", "fallback_reason"]
    search_fields = ["uuid", "contact__phone", "rcs_provider_id", "sms_provider_id"]
    raw_id_fields = ["campaign", "contact"]
    list_select_related = ["campaign", "contact"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Delivery._meta.fields if f.name not in ("id",)]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    """Raw carrier events are not tied to one organization: superusers only."""

    list_display = ["provider", "event_id", "received_at", "applied_at"]
    list_filter = ["provider"]
    search_fields = ["event_id"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
