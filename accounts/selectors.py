"""Read-side helpers for organizations and memberships."""

from accounts.models import Membership, Organization, SecondApprover
from accounts.tenancy import ROLE_PERMISSIONS, user_org_ids

SESSION_KEY = "organization_id"


def current_organization(request):
    """The organization the member is working in (chosen with the switcher), or None."""
    org_ids = user_org_ids(request.user)
    if not org_ids:
        return None
    chosen = request.session.get(SESSION_KEY)
    org_id = chosen if chosen in org_ids else org_ids[0]
    return Organization.objects.filter(id=org_id).first()


def approver_count(organization_id) -> int:
    """Active members whose role may approve campaigns (owners and admins)."""
    roles = [role for role, permissions in ROLE_PERMISSIONS.items() if "approve" in permissions]
    return Membership.objects.filter(organization_id=organization_id, role__in=roles, user__is_active=True).count()


def second_approver_required(organization: Organization) -> bool:
    """Whether the organization's setting makes a second person approve: always, never, or (the
    default) when two or more active members can approve."""
    if organization.second_approver == SecondApprover.ALWAYS:
        return True
    if organization.second_approver == SecondApprover.NEVER:
        return False
    return approver_count(organization.pk) >= 2
