from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.admin_scoping import OrgScopedAdmin
from accounts.models import ApiKey, CarrierReview, GatewayAccount, Membership, OfficialAccount, Organization

# django-otp's TOTP admin shows the secret key and its QR code back and edits devices outside the
# audited services; a lost authenticator is reset by the organization's owners and admins in the
# console (accounts.two_factor.two_factor_reset_member).
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdmin):
    org_path = "id"
    list_display = ["name", "slug", "quiet_hours_start", "quiet_hours_end", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(OrgScopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = []
    audit_values = ("organization", "user", "role")


class CarrierReviewInline(admin.TabularInline):
    """Carriers decide reviews; only the platform's superusers record their decisions."""

    model = CarrierReview
    extra = 0
    max_num = 3

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(OfficialAccount)
class OfficialAccountAdmin(OrgScopedAdmin):
    list_display = ["display_name", "legal_name", "organization", "sms_sender_id", "review_summary", "rcs_gateway"]
    list_filter = ["organization", "reviews__status"]
    search_fields = ["display_name", "legal_name", "sms_sender_id"]
    inlines = [CarrierReviewInline]

    @admin.display(description=_("carrier review"))
    def review_summary(self, obj):
        return " / ".join(f"{r.get_carrier_display()}: {r.get_status_display()}" for r in obj.reviews.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("reviews").select_related("rcs_gateway", "organization")


@admin.register(CarrierReview)
class CarrierReviewAdmin(OrgScopedAdmin):
    org_path = "account__organization"
    list_display = ["account", "carrier", "status", "decided_at", "reason"]
    list_filter = ["carrier", "status"]
    search_fields = ["account__display_name", "reason"]

    def has_add_permission(self, request):
        return request.user.is_superuser  # a carrier's decision, not the organization's

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(GatewayAccount)
class GatewayAccountAdmin(OrgScopedAdmin):
    list_display = ["name", "organization", "kind", "base_url", "rate_per_second", "provider_fallback", "credentials_masked"]
    list_filter = ["kind", "organization"]
    search_fields = ["name", "base_url"]
    exclude = ["credentials"]  # never shown back or edited here, only masked below
    audit_values = ("organization", "kind", "base_url", "media_hosts", "rate_per_second", "provider_fallback")

    @admin.display(description=_("credentials"))
    def credentials_masked(self, obj):
        return ", ".join(f"{k}={v}" for k, v in obj.masked_credentials().items())

    readonly_fields = ["credentials_masked"]


@admin.register(ApiKey)
class ApiKeyAdmin(OrgScopedAdmin):
    list_display = ["name", "organization", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organization", "revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at"]
    fields = ["organization", "name", "scopes", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request):
        return False  # keys are created in the console, where the secret is shown once
