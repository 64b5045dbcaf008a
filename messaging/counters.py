"""Campaign counters: increments are appended in bulk as deltas and folded periodically.

Writers (dispatch batches, receipt batches) never touch a shared hot row; readers sum the few folded
rows plus the deltas not yet folded, so no page ever counts Delivery rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.models import CampaignCounter, CounterDelta

# Counters are kept per 10 seconds (the column is still called ``minute``): fine enough for the
# monitor to chart a send that lasts half a minute; readers add buckets up to the width they draw.
COUNTER_BUCKET_SECONDS = 10


def counter_bucket(moment=None):
    """The start of the counter bucket holding ``moment`` (now by default)."""
    moment = moment or timezone.now()
    return moment.replace(second=moment.second - moment.second % COUNTER_BUCKET_SECONDS, microsecond=0)


def counters_add(increments: Counter, minute=None) -> None:
    """Append deltas. ``increments`` maps (campaign_id, channel, metric, detail) → count; ``minute``
    is the bucket they count in (``counter_bucket()`` by default)."""
    minute = minute or counter_bucket()
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


def _epoch_sql() -> str:
    """The ``minute`` column as whole seconds since 1970 (UTC), in this database's dialect."""
    if connection.vendor == "postgresql":
        return "CAST(EXTRACT(EPOCH FROM minute) AS BIGINT)"
    return "CAST(strftime('%%s', minute) AS INTEGER)"  # SQLite stores UTC text


def counter_rows(campaign_id: int, bucket_seconds: int | None = None, *, utc_offset_seconds: int = 0, since=None):
    """(time, channel, metric, detail, count) rows for one campaign: folded plus pending deltas.

    With ``bucket_seconds`` (a multiple of ``COUNTER_BUCKET_SECONDS``) the database adds the stored
    buckets up into buckets of that width, so a long campaign's chart reads a few hundred rows;
    the time is then each bucket's start, buckets aligned to local midnight for a zone
    ``utc_offset_seconds`` ahead of UTC (Japan: 9 h, so 6-hour buckets start at 00:00, 06:00 …).
    ``since`` keeps only stored buckets from that time on. One statement, so one snapshot: a fold
    running meanwhile neither hides nor doubles a delta.
    """
    counters, deltas = CampaignCounter._meta.db_table, CounterDelta._meta.db_table
    if bucket_seconds:
        width, offset = int(bucket_seconds), int(utc_offset_seconds)
        # Integer division: the start of the bucket, in seconds since 1970.
        moment = f"((({_epoch_sql()}) + {offset}) / {width}) * {width} - {offset}"
    else:
        moment = "minute"
    where, params = "campaign_id = %s", [campaign_id]
    if since is not None:
        where, params = "campaign_id = %s AND minute >= %s", [campaign_id, since]
    sql = (
        f"SELECT t.at, channel, metric, detail, SUM(n) FROM ("
        f" SELECT {moment} AS at, channel, metric, detail, count AS n FROM {counters} WHERE {where}"
        f" UNION ALL"
        f" SELECT {moment} AS at, channel, metric, detail, delta AS n FROM {deltas} WHERE {where}"
        f") AS t GROUP BY t.at, channel, metric, detail"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + params)
        rows = cursor.fetchall()
    if bucket_seconds:
        return [(datetime.fromtimestamp(int(at), UTC), ch, me, d, int(n)) for at, ch, me, d, n in rows]
    return [(_as_datetime(at), ch, me, d, int(n)) for at, ch, me, d, n in rows]


def counter_span(campaign_id: int, metrics) -> tuple | None:
    """(first, last) stored bucket in which any of ``metrics`` counted for the campaign, or None."""
    counters, deltas = CampaignCounter._meta.db_table, CounterDelta._meta.db_table
    metrics = list(metrics)
    marks = ", ".join(["%s"] * len(metrics))
    sql = (
        f"SELECT MIN(minute), MAX(minute) FROM ("
        f" SELECT minute FROM {counters} WHERE campaign_id = %s AND metric IN ({marks})"
        f" UNION ALL"
        f" SELECT minute FROM {deltas} WHERE campaign_id = %s AND metric IN ({marks})"
        f") AS t"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id, *metrics, campaign_id, *metrics])
        first, last = cursor.fetchone()
    if first is None:
        return None
    return _as_datetime(first), _as_datetime(last)


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
