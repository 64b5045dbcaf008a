"""A ModelAdmin base that confines staff users to the organizations they belong to."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import Http404

from .models import Membership, Organization, Role
from .tenancy import scoped, user_org_ids

MANAGING_ROLES = (Role.OWNER, Role.ADMIN)


def _manages_any(user):
    return Membership.objects.filter(user=user, role__in=MANAGING_ROLES).exists()


class OrgScopedAdmin(admin.ModelAdmin):
    """Superusers see everything; other staff see and edit only their organizations' rows.

    Another organization's object answers 404, not a redirect, so ids reveal nothing.
    """

    org_path = "organization"

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user, self.org_path)

    def _scope_related(self, db_field, request, kwargs):
        if request.user.is_superuser:
            return kwargs
        model = db_field.related_model
        org_ids = user_org_ids(request.user)
        if model is Organization:
            kwargs["queryset"] = Organization.objects.filter(id__in=org_ids)
        elif any(f.name == "organization" for f in model._meta.fields):
            kwargs["queryset"] = model._default_manager.filter(organization__in=org_ids)
        elif model is get_user_model():
            kwargs["queryset"] = model._default_manager.filter(memberships__organization__in=org_ids).distinct()
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, **self._scope_related(db_field, request, kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(db_field, request, **self._scope_related(db_field, request, kwargs))

    def has_module_permission(self, request):
        user = request.user
        return user.is_active and user.is_staff and (user.is_superuser or bool(user_org_ids(user)))

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def _may_write(self, request):
        user = request.user
        return user.is_active and user.is_staff and (user.is_superuser or _manages_any(user))

    def has_add_permission(self, request):
        return self._may_write(request)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404
