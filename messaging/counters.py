"""Campaign counters: increments are appended in bulk as deltas and folded periodically.

Writers (dispatch batches, receipt batches) never touch a shared hot row; readers sum the few folded
rows plus the deltas not yet folded, so no page ever counts Delivery rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.models import CampaignCounter, CounterDelta


def current_minute():
    return timezone.now().replace(second=0, microsecond=0)


def counters_add(increments: Counter, minute=None) -> None:
    """Append deltas. ``increments`` maps (campaign_id, channel, metric, detail) → count."""
    minute = minute or current_minute()
    rows = [
        CounterDelta(campaign_id=campaign_id, minute=minute, channel=channel, metric=metric, detail=detail, delta=n)
        for (campaign_id, channel, metric, detail), n in increments.items()
        if n and campaign_id
    ]
    if rows:
        CounterDelta.objects.bulk_create(rows)


def counters_fold(limit: int = 50_000) -> int:
    """Move up to ``limit`` deltas into CampaignCounter. Safe to run concurrently (rows are claimed)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            ids = list(
                CounterDelta.objects.select_for_update(skip_locked=True).order_by("id").values_list("id", flat=True)[
                    :limit
                ]
            )
        else:
            ids = list(CounterDelta.objects.order_by("id").values_list("id", flat=True)[:limit])
        if not ids:
            return 0
        totals: Counter = Counter()
        for row in CounterDelta.objects.filter(id__in=ids).values_list(
            "campaign_id", "minute", "channel", "metric", "detail", "delta"
        ):
            totals[row[:5]] += row[5]
        _upsert(totals)
        CounterDelta.objects.filter(id__in=ids).delete()
        return len(ids)


def _upsert(totals: Counter) -> None:
    table = CampaignCounter._meta.db_table
    sql = (
        f"INSERT INTO {table} (campaign_id, minute, channel, metric, detail, count) VALUES (%s, %s, %s, %s, %s, %s) "
        f"ON CONFLICT (campaign_id, minute, channel, metric, detail) DO UPDATE SET count = {table}.count + excluded.count"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(c, m, ch, me, d, n) for (c, m, ch, me, d), n in totals.items()])


def counter_rows(campaign_id: int):
    """(minute, channel, metric, detail, count) rows for one campaign: folded plus pending deltas.

    One statement, so one snapshot: a fold running meanwhile neither hides nor doubles a delta.
    """
    counters, deltas = CampaignCounter._meta.db_table, CounterDelta._meta.db_table
    sql = (
        f"SELECT minute, channel, metric, detail, SUM(n) FROM ("
        f" SELECT minute, channel, metric, detail, count AS n FROM {counters} WHERE campaign_id = %s"
        f" UNION ALL"
        f" SELECT minute, channel, metric, detail, delta AS n FROM {deltas} WHERE campaign_id = %s"
        f") AS t GROUP BY minute, channel, metric, detail"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id, campaign_id])
        rows = cursor.fetchall()
    return [(_as_datetime(m), ch, me, d, int(n)) for m, ch, me, d, n in rows]


def counter_totals(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """{campaign id: {metric: total}} over every minute and channel, folded plus pending deltas,
    for several campaigns in one statement (one snapshot, as ``counter_rows``)."""
    if not campaign_ids:
        return {}
    counters, deltas = CampaignCounter._meta.db_table, CounterDelta._meta.db_table
    marks = ", ".join(["%s"] * len(campaign_ids))
    sql = (
        f"SELECT campaign_id, metric, SUM(n) FROM ("
        f" SELECT campaign_id, metric, count AS n FROM {counters} WHERE campaign_id IN ({marks})"
        f" UNION ALL"
        f" SELECT campaign_id, metric, delta AS n FROM {deltas} WHERE campaign_id IN ({marks})"
        f") AS t GROUP BY campaign_id, metric"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*campaign_ids, *campaign_ids])
        rows = cursor.fetchall()
    totals: dict[int, dict[str, int]] = {}
    for campaign_id, metric, count in rows:
        totals.setdefault(campaign_id, {})[metric] = int(count)
    return totals


def _as_datetime(value):
    """SQLite hands raw-SQL datetimes back as text or naive values (stored in UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
