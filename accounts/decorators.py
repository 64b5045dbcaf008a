"""View guards: sign-in, the second factor, the current organization, and the member's role —
checked on the server."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.audit_hooks import permission_refused
from accounts.selectors import current_organization
from accounts.tenancy import ROLE_PERMISSIONS, user_role
from accounts.two_factor import two_factor_enabled, two_factor_satisfied
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
            refusal = two_factor_gate(request)
            if refusal is not None:
                return refusal
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


def two_factor_gate(request):
    """None when the session may use the console; otherwise where to send it.

    A session not verified by a second factor is ended if the member has one (it began before
    they enrolled elsewhere, or outside the sign-in flow), and is taken to set-up if one of their
    organizations makes two-factor sign-in mandatory (accounts.two_factor).
    """
    user = request.user
    if two_factor_satisfied(user):
        return None
    if two_factor_enabled(user):
        logout(request)
        messages.info(request, _("Please sign in again with your second factor."))
        return redirect_to_login(request.get_full_path())
    messages.info(request, _("Your organization requires two-factor sign-in. Set it up to continue."))
    return redirect(f"{reverse('accounts:two_factor_setup')}?{urlencode({'next': request.get_full_path()})}")


def signed_in_required(view):
    """A signed-in user's own pages (not an organization's): signed in, and past the second step."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        refusal = two_factor_gate(request)
        if refusal is not None:
            return refusal
        return view(request, *args, **kwargs)

    return wrapper
