"""Console pages for integrators: API keys (create — the secret is shown once —, list with last use,
revoke) and outbound webhook endpoints (create, events, secret rotation, enable/disable, the log).

Owners and admins only (the "manage" permission); everything reads through the current organization,
so another organization's ids answer 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.models import ApiKey, ApiScope, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from audit.services import audit_record
from messaging.outbound_webhooks import (
    delivery_resend,
    endpoint_create,
    endpoint_enable,
    endpoint_rotate_secret,
)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100,
                           help_text=gettext_lazy("Which system uses it, e.g. “order system (production)”."))
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"), choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Read only allows every GET and nothing else."),
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label=gettext_lazy("URL"), max_length=500, assume_scheme="https")
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"), choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError(_("Only http and https URLs."))
        return url


# --- API keys -----------------------------------------------------------------------------------


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
    keys = ApiKey.objects.filter(organization=request.organization).select_related("created_by")
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


# --- webhooks -----------------------------------------------------------------------------------


@member_required("manage")
def webhooks(request):
    form = WebhookEndpointForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        endpoint = endpoint_create(
            request.organization, form.cleaned_data["url"], form.cleaned_data["events"],
            form.cleaned_data["description"], user=request.user,
        )
        new_secret = endpoint.secret
        messages.success(request, _("The endpoint was added. Copy its signing secret now: it will not be shown again."))
        form = WebhookEndpointForm()
    endpoints = WebhookEndpoint.objects.filter(organization=request.organization).annotate(
        failed=Count("deliveries", filter=Q(deliveries__status="failed")),
        pending=Count("deliveries", filter=Q(deliveries__status="pending")),
    )
    return render(request, "accounts/webhooks.html", {
        "form": form, "endpoints": endpoints, "new_secret": new_secret,
        "disabled": [endpoint for endpoint in endpoints if endpoint.disabled_at],
    })


def _endpoint(request, pk) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, organization=request.organization, pk=pk)


@member_required("manage")
def webhook_detail(request, pk):
    endpoint = _endpoint(request, pk)
    deliveries = endpoint.deliveries.order_by("-created_at", "-id").prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("-attempted_at", "-id"))
    )
    status = request.GET.get("status", "")
    if status in ("pending", "succeeded", "failed"):
        deliveries = deliveries.filter(status=status)
    page = Paginator(deliveries, 25).get_page(request.GET.get("page"))
    return render(request, "accounts/webhook_detail.html", {
        "endpoint": endpoint, "page": page, "status": status, "new_secret": None,
        "previous_valid": endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > timezone.now(),
    })


@member_required("manage")
@require_POST
def webhook_rotate(request, pk):
    endpoint = endpoint_rotate_secret(_endpoint(request, pk))
    messages.success(request, _(
        "A new signing secret was made. Both secrets are accepted until %(until)s; copy the new one now."
    ) % {"until": timezone.localtime(endpoint.previous_secret_expires_at).strftime("%Y-%m-%d %H:%M")})
    page = Paginator(endpoint.deliveries.order_by("-created_at"), 25).get_page(1)
    return render(request, "accounts/webhook_detail.html", {
        "endpoint": endpoint, "page": page, "status": "", "new_secret": endpoint.secret, "previous_valid": True,
    })


@member_required("manage")
@require_POST
def webhook_toggle(request, pk):
    endpoint = _endpoint(request, pk)
    if endpoint.is_active:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
        messages.success(request, _("The endpoint was paused."))
    else:
        endpoint_enable(endpoint)
        messages.success(request, _("The endpoint was enabled."))
    return redirect("accounts:webhook_detail", pk=endpoint.pk)


@member_required("manage")
@require_POST
def webhook_delete(request, pk):
    endpoint = _endpoint(request, pk)
    endpoint.delete()
    messages.success(request, _("The endpoint was deleted."))
    return redirect("accounts:webhooks")


@member_required("manage")
@require_POST
def webhook_resend(request, pk):
    delivery = get_object_or_404(WebhookDelivery, endpoint__organization=request.organization, pk=pk)
    delivery_resend(delivery)
    messages.success(request, _("The event was queued again."))
    return redirect("accounts:webhook_detail", pk=delivery.endpoint_id)
