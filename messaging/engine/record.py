"""Stage 4, recording: a batch's outcome goes in with a few bulk UPDATEs and its counter deltas in
one transaction, and ``delivery_status_changed`` announces what really changed. ``mark_sent`` and
``mark_fallback_leg_sent`` are shared with the receipts, which can overtake the record of a send
(a worker died between the carrier's answer and the record).

Announcements name ``record_outcome`` as their sender; no receiver filters on it."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.sql import among
from messaging.counters import counter_bucket, counters_add
from messaging.engine.context import Row
from messaging.engine.failover import gateway_switches_audit, sms_gateways_unpin
from messaging.engine.send import Outcome
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason, Metric
from messaging.signals import delivery_status_changed

D = DeliveryStatus


def record_outcome(cid: int | None, outcome: Outcome, cancelled: list[Row]) -> None:
    """Write what a batch's sends came to — sent, failed, to retry after a wait, cancelled for an
    opt-out — with the counter deltas of a campaign, in one transaction."""
    now = timezone.now()
    increments: Counter = Counter()
    with transaction.atomic():
        for rows, channel in ((outcome.rcs_sent, Channel.RCS), (outcome.sms_sent, Channel.SMS)):
            for segments, ids in _by_segments(rows).items():
                mark_sent("id", ids, channel, now, increments, sms_segments=segments)
        for segments, ids in _by_segments(outcome.fallback_sms_sent).items():
            mark_fallback_leg_sent("id", ids, now, increments, sms_segments=segments)
        for row, code, reason in outcome.failed:
            updated = Delivery.objects.filter(id=row.id, status__lt=D.FAILED).update(
                status=D.FAILED, error_code=code[:50], error_reason=reason, failed_at=now, lease_until=None,
                pending_fallback=False,
            )
            increments[(cid, row.channel, Metric.FAILED, code[:50])] += updated
            if updated:
                _announce("failed", [row], cid, row.channel)
        by_wait = defaultdict(list)
        for delivery_id, wait in outcome.retry.items():
            by_wait[round(wait, 1)].append(delivery_id)
        for wait, ids in by_wait.items():
            Delivery.objects.filter(id__in=ids).update(lease_until=now + timedelta(seconds=wait))
        sms_gateways_unpin(outcome.sms_unpinned)
        gateway_switches_audit(outcome.gateway_switches)
        if outcome.throttled:
            Delivery.objects.filter(id__in=outcome.throttled, attempts__gt=0).update(attempts=F("attempts") - 1)
        if cancelled:
            updated = Delivery.objects.filter(id__in=[r.id for r in cancelled], status__lt=D.CANCELLED).update(
                status=D.CANCELLED, error_code="opted_out", lease_until=None, pending_fallback=False
            )
            increments[(cid, "", Metric.CANCELLED, "opted_out")] += updated
        if cid:
            counters_add(increments, counter_bucket(now))


def _by_segments(rows: list[Row]) -> dict[int | None, list[int]]:
    """Row ids by the SMS segments of their text as sent (None: no SMS text was built, as for a
    +Message send): one UPDATE per distinct count, which is one for a text without placeholders."""
    groups: dict[int | None, list[int]] = defaultdict(list)
    for row in rows:
        groups[row.sms_segments].append(row.id)
    return groups


def _segments_sql(set_sql: str, set_params: list, sms_segments: int | None) -> tuple[str, list]:
    if sms_segments is None:
        return set_sql, set_params
    return f"{set_sql}, sms_segments = %s", [*set_params, sms_segments]


def _update_returning(set_sql: str, set_params: list, key: str, keys: list, where_sql: str) -> list[tuple]:
    """UPDATE deliveries matched by ``key`` (id or uuid) IN ``keys``; returns the rows that changed
    as (id, campaign id, channel, fallback reason, carrier)."""
    if not keys:
        return []
    matching, params = among(key, keys, "uuid[]" if key == "uuid" else "")
    sql = (
        f"UPDATE {Delivery._meta.db_table} SET {set_sql} WHERE {matching} AND {where_sql} "
        f"RETURNING id, campaign_id, channel, fallback_reason, carrier"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*set_params, *params])
        return cursor.fetchall()


def mark_sent(key: str, keys: list, channel: str, now, increments: Counter, sms_segments: int | None = None) -> list[tuple]:
    """QUEUED → SENT on ``channel``, counted once whoever gets there first: the send's own record or
    a receipt that arrived before it (a worker died between the carrier's answer and the record).
    ``sms_segments``: the segments of the SMS text sent (when one was), kept for costs."""
    rows = _update_returning(
        *_segments_sql("status = %s, sent_at = COALESCE(sent_at, %s), lease_until = NULL", [D.SENT, now], sms_segments),
        key,
        keys,
        f"status = {D.QUEUED} AND channel = '{channel}'",
    )
    fell_back = [row for row in rows if row[3] and row[2] == Channel.SMS]
    for _id, campaign_id, row_channel, _reason, _carrier in rows:
        increments[(campaign_id, row_channel, Metric.SENT, "")] += 1
    for _id, campaign_id, _channel, reason, carrier in fell_back:
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK, reason)] += 1
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK_ON, carrier)] += 1
    _announce_rows("sent", rows)
    _announce_rows("fell_back", fell_back)
    return rows


def mark_fallback_leg_sent(key: str, keys: list, now, increments: Counter, sms_segments: int | None = None) -> list[tuple]:
    """The SMS leg after a revoked RCS message went out: it moves from the RCS to the SMS tally."""
    rows = _update_returning(
        *_segments_sql("pending_fallback = %s, lease_until = NULL, sent_at = %s", [False, now], sms_segments),
        key,
        keys,
        f"pending_fallback AND channel = '{Channel.SMS}'",
    )
    for _id, campaign_id, _channel, _reason, carrier in rows:
        increments[(campaign_id, Channel.RCS, Metric.SENT, "")] -= 1
        increments[(campaign_id, Channel.SMS, Metric.SENT, "")] += 1
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK, FallbackReason.TTL_EXPIRED)] += 1
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK_ON, carrier)] += 1
    _announce_rows("fell_back", rows)
    return rows


def _announce_rows(change: str, rows: list[tuple]) -> None:
    if rows:
        delivery_status_changed.send(
            sender=record_outcome, change=change, deliveries=[(r[0], r[1], r[2]) for r in rows]
        )


def _announce(change: str, rows: list[Row], campaign_id, channel: str) -> None:
    if rows:
        delivery_status_changed.send(
            sender=record_outcome, change=change, deliveries=[(row.id, campaign_id, channel) for row in rows]
        )
