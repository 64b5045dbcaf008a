"""Tenant scoping: which organizations a user belongs to, and querysets limited to them.

Every queryset a user can reach goes through here, so another organization's id answers 404.
"""

from django.http import Http404

from accounts.models import Membership, Role

# What each role may do; checked on the server for every page and API call.
ROLE_PERMISSIONS = {
    Role.OWNER: {"view", "compose", "approve", "manage", "operate"},
    Role.ADMIN: {"view", "compose", "approve", "manage", "operate"},
    Role.MARKETER: {"view", "compose"},
    Role.OPERATOR: {"view", "operate"},
    Role.VIEWER: {"view"},
}


def user_org_ids(user):
    if not user.is_authenticated:
        return []
    cached = getattr(user, "_org_ids_cache", None)
    if cached is None:
        cached = list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))
        user._org_ids_cache = cached
    return cached


def user_role(user, organization_id):
    membership = Membership.objects.filter(user=user, organization_id=organization_id).only("role").first()
    return membership.role if membership else None


def has_permission(user, organization_id, permission: str) -> bool:
    if user.is_superuser:
        return True
    role = user_role(user, organization_id)
    return bool(role) and permission in ROLE_PERMISSIONS[role]


def scoped(queryset, user, org_path="organization"):
    """Limit ``queryset`` to the user's organizations (superusers see everything)."""
    if user.is_superuser:
        return queryset
    return queryset.filter(**{f"{org_path}__in": user_org_ids(user)})


def get_scoped_or_404(queryset, user, org_path="organization", **lookup):
    try:
        return scoped(queryset, user, org_path).get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404 from None
