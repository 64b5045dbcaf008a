"""A ModelAdmin base that confines staff users to the organizations they belong to.

The admin site admits platform superusers only (config/admin_site.py), so for them this scoping is
a no-op; it stays as a second line should a non-superuser ever be let in.
"""

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.contrib.auth import get_user_model
from django.http import Http404

from accounts.models import Membership, Organization, Role
from accounts.tenancy import scoped, user_org_ids

MANAGING_ROLES = (Role.OWNER, Role.ADMIN)


def _manages_any(user):
    return Membership.objects.filter(user=user, role__in=MANAGING_ROLES).exists()


def _managed_org_ids(user):
    return list(Membership.objects.filter(user=user, role__in=MANAGING_ROLES).values_list("organization_id", flat=True))


class OrgScopedAdmin(admin.ModelAdmin):
    """Superusers see everything; other staff see and edit only their organizations' rows.

    Another organization's object answers 404, not a redirect, so ids reveal nothing.
    """

    org_path = "organization"

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user, self.org_path)

    def _scope_related(self, db_field, request, kwargs):
        # Choices are only rendered in writable forms, so offer the organizations the user manages:
        # an owner elsewhere who only views this organization cannot attach rows to it.
        if request.user.is_superuser:
            return kwargs
        model = db_field.related_model
        org_ids = _managed_org_ids(request.user)
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

    def get_list_filter(self, request):
        """Relation filters list only values present in the user's rows, not every organization's."""
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser:
            return filters
        scoped_filters = []
        for item in filters:
            if isinstance(item, str) and get_fields_from_path(self.model, item)[-1].is_relation:
                item = (item, admin.RelatedOnlyFieldListFilter)
            scoped_filters.append(item)
        return scoped_filters

    def has_module_permission(self, request):
        user = request.user
        return user.is_active and user.is_staff and (user.is_superuser or bool(user_org_ids(user)))

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def _may_write(self, request, obj=None):
        """Owners and admins write — for an existing row, only in that row's organization."""
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        if obj is None:
            return _manages_any(user)
        return self._org_id_of(obj) in _managed_org_ids(user)

    def _org_id_of(self, obj):
        *path, last = self.org_path.split("__")
        for name in path:
            obj = getattr(obj, name)
        return obj.pk if last in ("id", "pk") else getattr(obj, f"{last}_id")

    def has_add_permission(self, request):
        return self._may_write(request)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404

    def _404_unless_visible(self, request, object_id):
        # Django checks permissions before existence; answer another organization's id with 404
        # whatever the user's role, so ids reveal nothing.
        if object_id is not None and self.get_object(request, unquote(object_id)) is None:
            raise Http404

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        self._404_unless_visible(request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._404_unless_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._404_unless_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)
