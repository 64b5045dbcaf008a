"""Outbound webhook endpoints: create, events, secret rotation, enable/disable, delete, the delivery
log and resending one event (through messaging.outbound_webhooks).

Owners and admins only (the "manage" permission); everything reads through the current organization,
so another organization's ids answer 404.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import WebhookEndpointForm
from accounts.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging.outbound_webhooks import (
    delivery_resend,
    endpoint_create,
    endpoint_delete,
    endpoint_enable,
    endpoint_pause,
    endpoint_rotate_secret,
)


@member_required("manage")
def webhooks(request):
    form = WebhookEndpointForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        endpoint = endpoint_create(
            request.organization, form.cleaned_data["url"], form.cleaned_data["events"],
            form.cleaned_data["description"], user=request.user, request=request,
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
    endpoint = endpoint_rotate_secret(_endpoint(request, pk), actor=request.user, request=request)
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
        endpoint_pause(endpoint, actor=request.user, request=request)
        messages.success(request, _("The endpoint was paused."))
    else:
        endpoint_enable(endpoint, actor=request.user, request=request)
        messages.success(request, _("The endpoint was enabled."))
    return redirect("accounts:webhook_detail", pk=endpoint.pk)


@member_required("manage")
@require_POST
def webhook_delete(request, pk):
    endpoint = _endpoint(request, pk)
    endpoint_delete(endpoint, actor=request.user, request=request)
    messages.success(request, _("The endpoint was deleted."))
    return redirect("accounts:webhooks")


@member_required("manage")
@require_POST
def webhook_resend(request, pk):
    delivery = get_object_or_404(WebhookDelivery, endpoint__organization=request.organization, pk=pk)
    delivery_resend(delivery)
    messages.success(request, _("The event was queued again."))
    return redirect("accounts:webhook_detail", pk=delivery.endpoint_id)
