from django.contrib import admin

from accounts.admin_scoping import OrgScopedAdmin
from campaigns.models import Campaign, Consent, Contact, ContactList, ContactListMembership


class ReadOnlyAdmin:
    """Viewable in the admin, never added, changed or deleted there (not even by a superuser)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(OrgScopedAdmin):
    list_display = ["phone", "name", "organization", "opted_out_at", "created_at"]
    list_filter = ["organization", ("opted_out_at", admin.EmptyFieldListFilter)]
    search_fields = ["phone", "name"]
    list_per_page = 50
    show_full_result_count = False
    # The opt-out is a ledger entry: given by the person (campaigns.optout), never cleared here.
    readonly_fields = ["opted_out_at", "opt_out_method"]

    def has_delete_permission(self, request, obj=None):
        return False  # erasure goes through campaigns.optout.contact_erase (console), which audits it


class MembershipInline(admin.TabularInline):
    model = ContactListMembership
    raw_id_fields = ["contact"]
    extra = 0


@admin.register(ContactList)
class ContactListAdmin(OrgScopedAdmin):
    list_display = ["name", "organization", "purpose", "created_at"]
    list_filter = ["organization", "purpose"]
    search_fields = ["name"]


@admin.register(ContactListMembership)
class ContactListMembershipAdmin(OrgScopedAdmin):
    org_path = "contact_list__organization"
    list_display = ["contact_list", "contact", "added_at"]
    list_filter = ["contact_list"]
    search_fields = ["contact__phone", "contact__name", "contact_list__name"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin, OrgScopedAdmin):
    """The consent ledger is evidence (特定電子メール法): recorded and revoked through campaigns.optout only."""

    list_display = ["contact", "organization", "method", "source", "wording_version", "granted_at", "revoked_at"]
    list_filter = ["organization", "method", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["contact__phone", "source", "wording_version"]
    raw_id_fields = ["contact"]
    date_hierarchy = "granted_at"
    show_full_result_count = False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin, OrgScopedAdmin):
    """Campaigns are composed, approved and run in the console, through the services that check the
    content, the display rules and the approval."""

    list_display = ["name", "organization", "official_account", "classification", "status", "scheduled_at", "created_by", "created_at"]
    list_filter = ["organization", "status", "classification"]
    search_fields = ["name"]
    filter_horizontal = ["audience_lists", "exclusion_lists"]
    readonly_fields = ["status", "status_reason", "approved_by", "approved_at", "started_at", "finished_at", "parent"]
    raw_id_fields = ["created_by"]
