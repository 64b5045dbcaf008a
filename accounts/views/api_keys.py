"""API keys for integrators: create (the secret is shown once), list with last use, revoke.

Owners and admins only (the "manage" permission); everything reads through the current organization,
so another organization's ids answer 404.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import ApiKeyForm
from accounts.models import ApiKey, ApiScope
from audit.services import audit_record


def _audit(action: str, request, key: ApiKey) -> None:
    audit_record(action, request=request, organization=request.organization.pk, actor=request.user, target=key,
                 target_label=f"{key.name} (pm_{key.prefix}_…)", details={"scopes": key.scopes})


@member_required("manage")
def api_keys(request):
    form = ApiKeyForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        key, new_secret = ApiKey.generate(
            request.organization, form.cleaned_data["name"], form.cleaned_data["scopes"], created_by=request.user
        )
        _audit("api_key.created", request, key)
        messages.success(request, _("The API key was created. Copy it now: it will not be shown again."))
        form = ApiKeyForm()
    keys = ApiKey.objects.filter(organization=request.organization).with_creator_membership()
    return render(request, "accounts/api_keys.html", {
        "form": form, "keys": keys, "new_secret": new_secret, "scope_labels": dict(ApiScope.choices),
    })


@member_required("manage")
@require_POST
def api_key_revoke(request, pk):
    key = get_object_or_404(ApiKey, organization=request.organization, pk=pk)
    if key.revoked_at is None:
        key.revoke()
        _audit("api_key.revoked", request, key)
        messages.success(request, _("The API key “%(name)s” was revoked.") % {"name": key.name})
    return redirect("accounts:api_keys")
