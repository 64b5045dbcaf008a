"""Template context for the console shell: the member's organizations, current organization and role.

Values are lazy, so a partial that never renders the shell never pays for the queries.
"""

from django.utils.functional import SimpleLazyObject

from accounts.models import Membership
from accounts.notifications import unread_count
from accounts.selectors import current_organization
from accounts.tenancy import ROLE_PERMISSIONS
from messaging.models import Conversation


def console_shell(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def _organization():
        return getattr(request, "organization", None) or current_organization(request)

    def _memberships():
        return list(Membership.objects.filter(user=user).select_related("organization").order_by("organization__name"))

    current = SimpleLazyObject(_organization)

    def _role():
        role = getattr(request, "role", None)
        if role:
            return role
        org = _organization()
        if org is None:
            return ""
        for membership in memberships:
            if membership.organization_id == org.id:
                return membership.role
        return ""

    memberships = SimpleLazyObject(_memberships)

    def _can():
        role = _role()
        return {permission: True for permission in ROLE_PERMISSIONS.get(role, ())}

    def _unread():
        org = _organization()
        if org is None or "operate" not in ROLE_PERMISSIONS.get(_role(), ()):
            return 0
        return Conversation.objects.filter(organization=org, unread_count__gt=0).count()

    def _notifications():
        org = _organization()
        return {"unread": unread_count(user, org) if org is not None else 0}

    return {
        "shell_unread": SimpleLazyObject(_unread),
        "shell_notifications": SimpleLazyObject(_notifications),
        "shell_memberships": memberships,
        "shell_organization": current,
        "shell_can": SimpleLazyObject(_can),
    }
