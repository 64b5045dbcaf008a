"""Webhook endpoints for the carriers: verify, store durably, answer 200, apply later.

Per request: one cached gateway lookup, a constant-time signature (RBM) or URL-secret (CM.com)
check — 403 and nothing stored when it fails — then the request's events are stored in one
statement and their new ids handed to the enqueue buffer once committed (messaging.webhook_intake,
shared with the ASGI receiver in messaging/receipt_server.py).
"""

from __future__ import annotations

from django.db import transaction
from django.http import (
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
    HttpResponseNotFound,
    JsonResponse,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import GatewayKind
from messaging.gateways.base import Gateway
from messaging.webhook_intake import enqueue_buffer, gateway_adapter, provider_events_store


def _receive(request, gateway: Gateway, url_secret: str = ""):
    body = request.body
    if not gateway.verify_webhook(request.headers, body, url_secret):
        return HttpResponseForbidden()
    try:
        events = gateway.parse_events(body)
    except ValueError:
        return HttpResponse(status=400)
    for event in events:
        event.gateway_id = gateway.account.pk
    # One statement in autocommit mode: committed when it returns (no BEGIN/COMMIT round trips).
    event_ids = provider_events_store(gateway.kind, events)
    if event_ids:
        transaction.on_commit(lambda: enqueue_buffer.add(event_ids))
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def rbm_webhook(request, gateway_id: int):
    gateway = gateway_adapter(gateway_id, GatewayKind.RBM)
    if gateway is None:
        return HttpResponseNotFound()
    answer = gateway.handshake(request.body)
    if answer is not None:
        return JsonResponse(answer)
    return _receive(request, gateway)


@csrf_exempt
def cm_webhook(request, gateway_id: int, secret: str):
    if request.method != "POST":
        response = HttpResponseNotAllowed(["POST"])
    else:
        gateway = gateway_adapter(gateway_id, GatewayKind.CM)
        response = HttpResponseNotFound() if gateway is None else _receive(request, gateway, secret)
    if response.status_code >= 400:
        # Django logs 4xx answers with their path, and this path holds the callback secret.
        response._has_been_logged = True
    return response
