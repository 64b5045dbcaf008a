"""Webhook endpoints for the carriers: verify, store durably, answer 200, apply later.

Per request: one cached gateway lookup, a constant-time signature (RBM) or URL-secret (CM.com)
check — 403 and nothing stored when it fails — then one INSERT … ON CONFLICT DO NOTHING RETURNING
for the request's events (unique per provider and event id, so a repeated callback is stored once
and enqueued once), then the new ids go to a per-process buffer that enqueues one Celery task per
batch (every ``WEBHOOK_ENQUEUE_INTERVAL`` seconds, default 0.2; 0 = one task per request). The
events are already committed when the buffer takes them, so ids lost with a dying process are not
lost work: the periodic sweeper applies every stored event that is still unapplied.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.http import (
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
    HttpResponseNotFound,
    JsonResponse,
)
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import GatewayAccount, GatewayKind
from messaging.gateways import gateway_for
from messaging.gateways.base import Gateway, NormalizedEvent
from messaging.models import ProviderEvent

GATEWAY_CACHE_SECONDS = 30.0
_gateways: dict[tuple[int, str], tuple[float, Gateway | None]] = {}


def cached_gateway(gateway_id: int, kind: str) -> tuple[bool, Gateway | None]:
    """(found, adapter) from the cache alone, without touching the database."""
    cached = _gateways.get((gateway_id, kind))
    if cached is not None and cached[0] > time.monotonic():
        return True, cached[1]
    return False, None


def _gateway(gateway_id: int, kind: str) -> Gateway | None:
    """The adapter for a gateway account, cached briefly: the hot path must not query it each time."""
    found, gateway = cached_gateway(gateway_id, kind)
    if found:
        return gateway
    key, current = (gateway_id, kind), time.monotonic()
    account = GatewayAccount.objects.filter(pk=gateway_id, kind=kind).first()
    gateway = gateway_for(account) if account is not None else None
    _gateways[key] = (current + GATEWAY_CACHE_SECONDS, gateway)
    return gateway


def _forget_gateway(sender, instance, **kwargs):
    def forget():
        for kind in GatewayKind.values:
            _gateways.pop((instance.pk, kind), None)

    # Now, and again once the change is committed: a request in between may have cached the old row.
    forget()
    transaction.on_commit(forget)


post_save.connect(_forget_gateway, sender=GatewayAccount, dispatch_uid="webhooks_forget_gateway_saved")
post_delete.connect(_forget_gateway, sender=GatewayAccount, dispatch_uid="webhooks_forget_gateway_deleted")


def provider_events_store(provider: str, events: list[NormalizedEvent]) -> list[int]:
    """Store events durably; returns the ids of the rows that are new (repeats are skipped)."""
    from messaging.receipts import event_to_payload

    unique: dict[str, NormalizedEvent] = {}
    for event in events:
        if event.event_id:
            unique.setdefault(event.event_id, event)
    if not unique:
        return []
    table = ProviderEvent._meta.db_table
    now = timezone.now()
    event_ids = [event_id[:200] for event_id in unique]
    payloads = [json.dumps(event_to_payload(event), ensure_ascii=False) for event in unique.values()]
    conflict = "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two array parameters, however many events: nothing to build or parse per event.
            cursor.execute(
                f"INSERT INTO {table} (provider, event_id, payload, received_at) "
                f"SELECT %s, e.event_id, e.payload::jsonb, %s FROM unnest(%s::text[], %s::text[]) AS e(event_id, payload) "
                f"{conflict}",
                [provider, now, event_ids, payloads],
            )
        else:
            values = ", ".join(["(%s, %s, %s, %s)"] * len(event_ids))
            params = [value for pair in zip(event_ids, payloads, strict=True) for value in (provider, *pair, now)]
            cursor.execute(f"INSERT INTO {table} (provider, event_id, payload, received_at) VALUES {values} {conflict}", params)
        return [row[0] for row in cursor.fetchall()]


logger = logging.getLogger(__name__)


def _enqueue(event_ids: list[int]) -> None:
    from messaging.tasks import apply_provider_events

    apply_provider_events.delay(event_ids)


class EnqueueBuffer:
    """Collects new event ids and enqueues one apply task per batch instead of one per request."""

    max_batch = 2000

    def __init__(self):
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._thread: threading.Thread | None = None

    def add(self, event_ids: list[int]) -> None:
        interval = settings.WEBHOOK_ENQUEUE_INTERVAL
        if interval <= 0:
            _enqueue(event_ids)
            return
        batch = None
        with self._lock:
            self._ids.extend(event_ids)
            if len(self._ids) >= self.max_batch:
                batch, self._ids = self._ids, []
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
                self._thread.start()
        if batch:
            _enqueue(batch)

    def flush(self) -> None:
        with self._lock:
            batch, self._ids = self._ids, []
        if batch:
            try:
                _enqueue(batch)
            except Exception:  # the broker is down: the sweeper applies the stored events later
                logger.exception("Could not enqueue %d provider events", len(batch))

    def _run(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            self.flush()
            if connection.connection is not None:  # eager tasks (tests) touched the database here
                connection.close()


enqueue_buffer = EnqueueBuffer()


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
    gateway = _gateway(gateway_id, GatewayKind.RBM)
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
        gateway = _gateway(gateway_id, GatewayKind.CM)
        response = HttpResponseNotFound() if gateway is None else _receive(request, gateway, secret)
    if response.status_code >= 400:
        # Django logs 4xx answers with their path, and this path holds the callback secret.
        response._has_been_logged = True
    return response
