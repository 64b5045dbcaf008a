"""Applying provider events (delivery and read receipts, TTL revocations, failures) to deliveries.

Events arrive through the webhook endpoints, are stored as ProviderEvent rows (unique per provider
and event id) and applied here in batches: each batch claims its events, moves deliveries forward
with a few set-based UPDATEs (a status never moves back, so a READ that arrives before its DELIVERED
is kept, and a repeated or late event changes nothing), and appends the counter deltas — all in one
transaction, so an event is applied exactly once even if a worker dies halfway.

``events_apply`` claims stored events by id and applies them (what the apply task and the sweep
call); ``normalized_events_apply`` applies events already loaded. ProviderEvent.payload holds the
NormalizedEvent as a dict (see gateways.base).
"""

from __future__ import annotations

import json
import uuid as uuid_module
from collections import Counter, defaultdict
from dataclasses import fields

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.models import Contact
from core import stage_cpu
from core.sql import among
from messaging.counters import counters_add
from messaging.engine.dispatch import dispatch_fallbacks
from messaging.engine.record import mark_fallback_leg_sent, mark_sent
from messaging.gateways.base import SMS_LEG_SUFFIX, NormalizedEvent
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason, Metric, ProviderEvent
from messaging.signals import delivery_status_changed, inbound_received

INBOUND_KINDS = ("inbound_text", "inbound_postback", "inbound_location", "inbound_file")

D = DeliveryStatus
_EVENT_FIELDS = {f.name for f in fields(NormalizedEvent)}


def event_to_payload(event: NormalizedEvent) -> dict:
    payload = {name: getattr(event, name) for name in _EVENT_FIELDS}
    if event.occurred_at:
        payload["occurred_at"] = event.occurred_at.isoformat()
    return payload


def event_from_payload(payload: dict) -> NormalizedEvent:
    data = {key: value for key, value in payload.items() if key in _EVENT_FIELDS}
    if isinstance(data.get("occurred_at"), str):
        data["occurred_at"] = parse_datetime(data["occurred_at"])
    return NormalizedEvent(**data)


def _db_uuid(value: str) -> str | None:
    try:
        parsed = uuid_module.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None
    return parsed.hex if connection.vendor == "sqlite" else str(parsed)


def _split_leg(message_id: str) -> tuple[str | None, bool]:
    """(our delivery uuid, is the SMS leg)."""
    if message_id.endswith(SMS_LEG_SUFFIX):
        return _db_uuid(message_id[: -len(SMS_LEG_SUFFIX)]), True
    return _db_uuid(message_id), False


def _update_returning(set_sql: str, set_params: list, uuids: list[str], where_sql: str) -> list[tuple]:
    if not uuids:
        return []
    matching, params = among("uuid", uuids, "uuid[]")
    sql = (
        f"UPDATE {Delivery._meta.db_table} SET {set_sql} WHERE {matching} AND {where_sql} "
        f"RETURNING id, campaign_id, channel, carrier"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*set_params, *params])
        return cursor.fetchall()


def _lock_in_order(uuids: set[str]) -> None:
    """Lock every delivery this batch touches, in id order, before changing any of them: batches
    applied concurrently (a message's DELIVERED in one, its READ in another) then queue behind
    each other instead of deadlocking."""
    if not uuids or connection.vendor != "postgresql":
        return  # SQLite serialises writers anyway
    matching, params = among("uuid", uuids, "uuid[]")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Delivery._meta.db_table} WHERE {matching} ORDER BY id FOR UPDATE", params)


def _count(increments: Counter, rows, metric, detail="", by_carrier=None):
    """Count ``rows`` (id, campaign id, channel, carrier) under ``metric``, and under ``by_carrier``
    with the delivery's carrier as the detail (the monitor's carrier split)."""
    for _id, campaign_id, channel, carrier in rows:
        if campaign_id:
            increments[(campaign_id, channel, metric, detail)] += 1
            if by_carrier:
                increments[(campaign_id, channel, by_carrier, carrier)] += 1


def normalized_events_apply(events: list[NormalizedEvent]) -> Counter:
    """Apply status events to deliveries; returns the counter increments made."""
    now = timezone.now()
    increments: Counter = Counter()
    by_kind: dict[tuple[str, str], list[str]] = defaultdict(list)
    provider_sms: list[str] = []
    failures: list[tuple[str, str, str, str]] = []
    proof_of_send: dict[tuple[str, bool], list[str]] = defaultdict(list)
    reported_carriers: dict[str, list[str]] = defaultdict(list)  # carrier → delivery uuids
    inbound = [event for event in events if event.kind in INBOUND_KINDS]
    if inbound:
        inbound_received.send(sender=normalized_events_apply, events=inbound)
    for event in events:
        if not event.message_id:
            continue
        delivery_uuid, sms_leg = _split_leg(event.message_id)
        if delivery_uuid is None:
            continue
        leg = Channel.SMS if sms_leg else Channel.RCS
        if not sms_leg and event.provider == "cm" and event.channel == Channel.SMS:
            # Provider-side fallback: CM delivered our RCS message by SMS under the same reference.
            provider_sms.append(delivery_uuid)
            leg = Channel.SMS
        if event.kind in ("delivered", "read", "ttl_revoked"):
            by_kind[(event.kind, leg)].append(delivery_uuid)
        elif event.kind == "failed":
            failures.append((delivery_uuid, leg, event.error_code or "carrier_failed", event.error_reason))
        if event.kind in ("delivered", "read", "failed"):
            proof_of_send[(leg, sms_leg)].append(delivery_uuid)
        if event.carrier:
            reported_carriers[event.carrier].append(delivery_uuid)

    _lock_in_order(
        {uuid for uuids in by_kind.values() for uuid in uuids}
        | {f[0] for f in failures}
        | set(provider_sms)
        | {uuid for uuids in reported_carriers.values() for uuid in uuids}
    )
    for carrier, uuids in reported_carriers.items():
        _carrier_reported(carrier, uuids, increments)

    if provider_sms:
        rows = _update_returning(
            "channel = %s, fallback_reason = %s",
            [Channel.SMS, FallbackReason.PROVIDER],
            provider_sms,
            f"channel = '{Channel.RCS}' AND status >= {D.SENT}",
        )
        for _id, campaign_id, _channel, carrier in rows:
            if campaign_id:
                increments[(campaign_id, Channel.RCS, Metric.SENT, "")] -= 1
                increments[(campaign_id, Channel.SMS, Metric.SENT, "")] += 1
                increments[(campaign_id, Channel.SMS, Metric.FELL_BACK, FallbackReason.PROVIDER)] += 1
                increments[(campaign_id, Channel.SMS, Metric.FELL_BACK_ON, carrier)] += 1
        _announce("fell_back", rows)

    # A receipt can overtake the record of its own send (the worker died in between): it proves
    # the send, so record that first — the resend after the crash is dropped by the carrier.
    for (leg, suffixed), uuids in proof_of_send.items():
        mark_sent("uuid", uuids, leg, now, increments)
        if suffixed:
            mark_fallback_leg_sent("uuid", uuids, now, increments)

    for leg in (Channel.RCS, Channel.SMS):
        delivered_or_read = by_kind[("delivered", leg)] + by_kind[("read", leg)]
        rows = _update_returning(
            "status = %s, delivered_at = COALESCE(delivered_at, %s), error_code = ''",
            [D.DELIVERED, now],
            delivered_or_read,
            f"status >= {D.SENT} AND status < {D.DELIVERED} AND channel = '{leg}' AND NOT pending_fallback",
        )
        _count(increments, rows, Metric.DELIVERED, by_carrier=Metric.DELIVERED_ON)
        _announce("delivered", rows)
        rows = _update_returning(
            "status = %s, read_at = COALESCE(read_at, %s)",
            [D.READ, now],
            by_kind[("read", leg)],
            f"status = {D.DELIVERED} AND channel = '{leg}'",
        )
        _count(increments, rows, Metric.READ, by_carrier=Metric.READ_ON)
        _announce("read", rows)

    revoked = by_kind[("ttl_revoked", Channel.RCS)]
    if revoked:
        rows = _update_returning(
            "channel = %s, fallback_reason = %s, pending_fallback = %s, lease_until = NULL",
            [Channel.SMS, FallbackReason.TTL_EXPIRED, True],
            revoked,
            f"status = {D.SENT} AND channel = '{Channel.RCS}' AND NOT pending_fallback",
        )
        dispatch_fallbacks([(delivery_id, campaign_id) for delivery_id, campaign_id, _channel, _carrier in rows])

    for delivery_uuid, leg, code, reason in failures:
        rows = _update_returning(
            "status = %s, error_code = %s, error_reason = %s, failed_at = %s, pending_fallback = %s",
            [D.FAILED, code[:50], (reason or "")[:500], now, False],
            [delivery_uuid],
            f"status >= {D.SENT} AND status < {D.DELIVERED} AND channel = '{leg}'",
        )
        _count(increments, rows, Metric.FAILED, code[:50])
        _announce("failed", rows)

    counters_add(increments)
    return increments


def _carrier_reported(carrier: str, uuids: list[str], increments: Counter) -> None:
    """A delivery report named the network of deliveries whose carrier was not known (SMS, or the
    provider's own fallback: no capability answer gave it). Write it on the deliveries and, as the
    last known one, on their contacts; a fallback already counted moves to that carrier's column."""
    rows = _update_returning("carrier = %s", [carrier], uuids, "carrier = ''")
    counted = Delivery.objects.filter(
        id__in=[row[0] for row in rows], sent_at__isnull=False, pending_fallback=False
    ).exclude(fallback_reason="")
    for campaign_id in counted.exclude(campaign_id=None).values_list("campaign_id", flat=True):
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK_ON, "")] -= 1
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK_ON, carrier)] += 1
    if rows:
        Contact.objects.filter(
            id__in=Delivery.objects.filter(id__in=[row[0] for row in rows]).values("contact_id")
        ).exclude(carrier=carrier).update(carrier=carrier)


def _announce(change: str, rows) -> None:
    if rows:
        delivery_status_changed.send(
            sender=normalized_events_apply, change=change, deliveries=[row[:3] for row in rows]
        )


def events_apply(event_ids: list[int]) -> int:
    """Claim and apply stored events by id. Returns how many were applied by this call."""
    if not event_ids:
        return 0
    matching, params = among("id", event_ids)
    with stage_cpu.stage("receipt_apply"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {ProviderEvent._meta.db_table} SET applied_at = %s WHERE {matching} AND applied_at IS NULL "
                f"RETURNING id, payload",
                [timezone.now(), *params],
            )
            claimed = cursor.fetchall()
        events = []
        for _id, payload in claimed:
            if isinstance(payload, str):
                payload = json.loads(payload)
            events.append(event_from_payload(payload))
        normalized_events_apply(events)
    return len(claimed)


def pending_event_ids(limit: int = 5000) -> list[int]:
    """Stored events not yet applied (a worker died, or the task was lost): the sweeper's work."""
    return list(
        ProviderEvent.objects.filter(applied_at__isnull=True).order_by("id").values_list("id", flat=True)[:limit]
    )


def stray_events_apply() -> int:
    """Apply what a lost apply task left behind (the periodic sweep calls this)."""
    pending = pending_event_ids()
    return events_apply(pending) if pending else 0
