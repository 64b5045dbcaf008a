"""The Django admin: for the platform's superusers only; organizations use the console.

Tenant staff (``is_staff`` members of an organization) are refused by the whole site, whatever
their model permissions, so nothing the console forbids (another organization's rows, a gateway
account's base URL, one's own role, the ledgers, approved campaigns) can be done here instead.
Every change made through the admin is written to the audit log (``admin.added``,
``admin.changed``, ``admin.deleted``, and ``admin.action`` for any other bulk action, e.g.
enabling periodic tasks) by a mixin given to every registered ModelAdmin, ours and the
libraries' alike, so a model registered later is audited too.

Superusers sign in through the console's sign-in, so its second step applies to them too: the
admin's own login form is not used, and a session that skipped the second step is refused.
"""

from __future__ import annotations

import functools
import json

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

from accounts.two_factor import two_factor_satisfied
from audit.services import audit_record


def _organization_of(obj):
    if obj._meta.label_lower == "accounts.organization":
        return obj.pk
    return getattr(obj, "organization_id", None)


def _plain(message) -> list | str:
    """The admin's change message (a list of dicts, possibly with lazy strings) as plain JSON."""
    return json.loads(json.dumps(message or "", default=str))


class AuditedModelAdmin:
    """Mixed into every ModelAdmin registered on the platform site: each logged change is audited.

    A ModelAdmin's ``audit_values`` names fields whose value before and after a change is kept in
    the event (never secrets: those fields are not on the admin's forms). Read with getattr: a class
    attribute here would shadow the ModelAdmin's, which comes after this mixin.
    """

    def _audit(self, action, request, obj, **details):
        audit_record(action, request=request, organization=_organization_of(obj), target=obj, details=details)

    def save_model(self, request, obj, form, change):
        if change:
            request._admin_audit_values = {
                name: [str(form.initial.get(name, "")), str(form.cleaned_data.get(name, ""))]
                for name in form.changed_data if name in getattr(self, "audit_values", ())
            }
        super().save_model(request, obj, form, change)

    def log_addition(self, request, obj, message):
        self._audit("admin.added", request, obj, change=_plain(message))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        details = {"change": _plain(message)}
        values = getattr(request, "_admin_audit_values", None)
        if values:
            details["values"] = values
        self._audit("admin.changed", request, obj, **details)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit("admin.deleted", request, obj)
        return super().log_deletions(request, queryset)

    def get_actions(self, request):
        """Bulk actions other than deleting (audited row by row above) are audited when run."""
        return {
            name: (func if name == "delete_selected" else self._audited_action(func, name), name, description)
            for name, (func, name, description) in super().get_actions(request).items()
        }

    def _audited_action(self, func, name):
        @functools.wraps(func)
        def run(modeladmin, request, queryset):
            ids = [str(pk) for pk in queryset.values_list("pk", flat=True)[:1000]]
            audit_record("admin.action", request=request, target_type=self.model._meta.label_lower,
                         details={"action": name, "ids": ids})
            return func(modeladmin, request, queryset)

        return run


class PlatformAdminSite(admin.AdminSite):
    def has_permission(self, request):
        user = request.user
        return user.is_active and user.is_staff and user.is_superuser and two_factor_satisfied(user)

    def login(self, request, extra_context=None):
        return redirect_to_login(request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name))

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedModelAdmin):
            admin_class = type(admin_class.__name__, (AuditedModelAdmin, admin_class), {"__module__": admin_class.__module__})
        super().register(model_or_iterable, admin_class, **options)
