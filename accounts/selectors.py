"""Read-side helpers for organizations and memberships."""

from accounts.models import Organization
from accounts.tenancy import user_org_ids

SESSION_KEY = "organization_id"


def current_organization(request):
    """The organization the member is working in (chosen with the switcher), or None."""
    org_ids = user_org_ids(request.user)
    if not org_ids:
        return None
    chosen = request.session.get(SESSION_KEY)
    org_id = chosen if chosen in org_ids else org_ids[0]
    return Organization.objects.filter(id=org_id).first()
