"""View guards: sign-in, the current organization, and the member's role — checked on the server."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from accounts.audit_hooks import permission_refused
from accounts.selectors import current_organization
from accounts.tenancy import ROLE_PERMISSIONS, user_role
from core.logs import bound


def member_required(permission: str = "view"):
    """Require a signed-in member whose role in the current organization grants ``permission``.

    Sets ``request.organization`` and ``request.role``. Permissions: view, compose, approve,
    manage, operate (see accounts.tenancy.ROLE_PERMISSIONS).
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            organization = current_organization(request)
            if organization is None:
                raise PermissionDenied
            role = user_role(request.user, organization.id)
            if role is None or permission not in ROLE_PERMISSIONS[role]:
                permission_refused(request, organization, permission)
                raise PermissionDenied
            request.organization = organization
            request.role = role
            with bound(organization_id=organization.pk):
                return view(request, *args, **kwargs)

        return wrapper

    return decorator
