"""Taking carrier callbacks in: the adapter for a gateway account (cached), durable storage of the
events, and the buffer that hands new events to the workers.

Shared by the Django views (messaging/webhooks.py) and the ASGI receipt receiver
(messaging/receipt_server.py). Storage is one INSERT … ON CONFLICT DO NOTHING RETURNING for all the
events at hand (unique per provider and event id, so a repeated callback is stored once and
enqueued once); the new ids go to a per-process buffer that enqueues one Celery task per batch
(every ``WEBHOOK_ENQUEUE_INTERVAL`` seconds, default 0.2; 0 = one task per call). The events are
already committed when the buffer takes them, so ids lost with a dying process are not lost work:
the periodic sweeper applies every stored event that is still unapplied (messaging.receipts).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import GatewayAccount, GatewayKind
from messaging import tasks
from messaging.gateways import gateway_for
from messaging.gateways.base import Gateway, NormalizedEvent
from messaging.models import ProviderEvent
from messaging.receipts import event_to_payload

logger = logging.getLogger(__name__)

GATEWAY_CACHE_SECONDS = 30.0
_gateways: dict[tuple[int, str], tuple[float, Gateway | None]] = {}


def cached_gateway(gateway_id: int, kind: str) -> tuple[bool, Gateway | None]:
    """(found, adapter) from the cache alone, without touching the database."""
    cached = _gateways.get((gateway_id, kind))
    if cached is not None and cached[0] > time.monotonic():
        return True, cached[1]
    return False, None


def gateway_adapter(gateway_id: int, kind: str) -> Gateway | None:
    """The adapter for a gateway account, cached briefly: the hot path must not query it each time."""
    found, gateway = cached_gateway(gateway_id, kind)
    if found:
        return gateway
    key, current = (gateway_id, kind), time.monotonic()
    account = GatewayAccount.objects.filter(pk=gateway_id, kind=kind).first()
    gateway = gateway_for(account) if account is not None else None
    _gateways[key] = (current + GATEWAY_CACHE_SECONDS, gateway)
    return gateway


def forget_gateway(sender, instance, **kwargs):
    """post_save / post_delete of a GatewayAccount (connected in MessagingConfig.ready): drop the
    cached adapter so a changed secret or base URL applies at once."""

    def forget():
        for kind in GatewayKind.values:
            _gateways.pop((instance.pk, kind), None)

    # Now, and again once the change is committed: a request in between may have cached the old row.
    forget()
    transaction.on_commit(forget)


def provider_events_store(provider: str, events: list[NormalizedEvent]) -> list[int]:
    """Store events durably; returns the ids of the rows that are new (repeats are skipped)."""
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


def _enqueue(event_ids: list[int]) -> None:
    tasks.apply_provider_events.delay(event_ids)


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
