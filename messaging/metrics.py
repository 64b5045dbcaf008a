"""What ``/metrics`` reports, computed at scrape time from state every process shares.

Several processes produce the events (the web process, Celery workers of two queues, beat, perhaps
on several machines), so nothing here is a per-process counter: each family is read, when
Prometheus scrapes, from where the product already keeps it —

- deliveries by channel, status and gateway: the campaign counters (``messaging.counters``, folded
  rows plus pending deltas; single messages sent on their own have no counters and are not in it);
  the gateway is the kind of the official account's RCS or SMS gateway;
- queue depths: the broker itself (Redis LLEN, or the filesystem transport's queue folder);
- receipts: events stored but not applied, the oldest one's age, and the lag from the carrier's
  event time to our stored time over the last ``RECEIPT_LAG_SAMPLE`` events of the last 5 minutes;
- campaign progress: counts by status, and targeted / processed / progress for running and paused
  campaigns only (bounded labels);
- outbound webhook deliveries by status, and those retrying;
- contact import jobs by status and a histogram of the finished ones' durations;
- gateway requests, latencies and throttle waits: the shared Redis hash of
  ``messaging.gateway_metrics``.

No label carries a phone number, a message or a name. A source that fails is reported as
``plusmessage_metrics_source_up{source} 0`` and the others are still answered.
"""

from __future__ import annotations

import logging
import statistics
from datetime import timedelta

from celery import current_app
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from accounts.models import GatewayAccount, OfficialAccount, WebhookDelivery, WebhookDeliveryStatus
from campaigns.models import Campaign, CampaignStatus, ImportJob, ImportStatus
from messaging import gateway_metrics
from messaging.health import QUEUES
from messaging.models import CampaignCounter, CounterDelta, Metric, ProviderEvent
from messaging.stats import campaigns_progress

logger = logging.getLogger(__name__)

DELIVERY_STATUSES = [Metric.SENT, Metric.DELIVERED, Metric.READ, Metric.FAILED, Metric.FELL_BACK, Metric.CANCELLED]
RECEIPT_LAG_WINDOW = timedelta(minutes=5)
RECEIPT_LAG_SAMPLE = 1000
PROGRESS_CAMPAIGNS_MAX = 100
IMPORT_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class PlusMessageCollector:
    """A prometheus_client collector: every family, read fresh at each scrape."""

    def collect(self):
        sources = {
            "deliveries": deliveries_families,
            "queues": queue_families,
            "receipts": receipt_families,
            "campaigns": campaign_families,
            "webhooks": webhook_families,
            "imports": import_families,
            "gateways": gateway_families,
        }
        up = GaugeMetricFamily("plusmessage_metrics_source_up", "1 when the source answered this scrape", labels=["source"])
        for name, source in sources.items():
            try:
                families = list(source())
            except Exception:  # one failing source must not hide the others
                logger.exception("metrics source %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def deliveries_families():
    counters, deltas = CampaignCounter._meta.db_table, CounterDelta._meta.db_table
    campaigns, accounts = Campaign._meta.db_table, OfficialAccount._meta.db_table
    gateways = GatewayAccount._meta.db_table
    statuses = [str(status) for status in DELIVERY_STATUSES]
    marks = ", ".join(["%s"] * len(statuses))
    # Summed per campaign first (one pass over the counter rows), then joined to the few campaigns.
    sql = (
        f"SELECT t.channel, t.metric, rg.kind, sg.kind, SUM(t.n) FROM ("
        f" SELECT campaign_id, channel, metric, SUM(n) AS n FROM ("
        f"  SELECT campaign_id, channel, metric, count AS n FROM {counters} WHERE metric IN ({marks})"
        f"  UNION ALL"
        f"  SELECT campaign_id, channel, metric, delta AS n FROM {deltas} WHERE metric IN ({marks})"
        f" ) AS u GROUP BY campaign_id, channel, metric"
        f") AS t JOIN {campaigns} c ON c.id = t.campaign_id"
        f" JOIN {accounts} oa ON oa.id = c.official_account_id"
        f" LEFT JOIN {gateways} rg ON rg.id = oa.rcs_gateway_id"
        f" LEFT JOIN {gateways} sg ON sg.id = oa.sms_gateway_id"
        f" GROUP BY t.channel, t.metric, rg.kind, sg.kind"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, statuses + statuses)
        rows = cursor.fetchall()
    totals: dict[tuple[str, str, str], int] = {}
    for channel, metric, rcs_kind, sms_kind, count in rows:
        gateway = {"rcs": rcs_kind, "sms": sms_kind}.get(channel) or ""
        key = (channel or "none", metric, gateway or "none")
        totals[key] = totals.get(key, 0) + int(count)
    family = CounterMetricFamily(
        "plusmessage_deliveries",
        "Campaign deliveries by channel, status reached and gateway kind (from the campaign counters)",
        labels=["channel", "status", "gateway"],
    )
    for labels, count in sorted(totals.items()):
        family.add_metric(list(labels), count)
    yield family


def queue_depth(queue: str) -> int:
    """Messages waiting in a broker queue, whatever the transport (Redis list or queue folder)."""
    with current_app.connection_for_read(connect_timeout=2) as conn:
        return conn.default_channel._size(queue)


def queue_families():
    family = GaugeMetricFamily("plusmessage_queue_depth", "Messages waiting in the broker queue", labels=["queue"])
    for queue in QUEUES:
        family.add_metric([queue], queue_depth(queue))
    yield family


def receipt_families():
    now = timezone.now()
    pending = ProviderEvent.objects.filter(applied_at__isnull=True)
    yield GaugeMetricFamily(
        "plusmessage_receipt_backlog", "Carrier events stored but not yet applied", value=pending.count()
    )
    oldest = pending.order_by("id").values_list("received_at", flat=True).first()
    yield GaugeMetricFamily(
        "plusmessage_receipt_oldest_pending_seconds",
        "Age of the oldest carrier event not yet applied (0 when none waits)",
        value=(now - oldest).total_seconds() if oldest else 0.0,
    )
    recent = ProviderEvent.objects.order_by("-id").values_list("received_at", "payload__occurred_at")[
        :RECEIPT_LAG_SAMPLE
    ]
    lags = []
    for received_at, occurred in recent:
        if received_at < now - RECEIPT_LAG_WINDOW or not isinstance(occurred, str):
            continue
        occurred_at = parse_datetime(occurred)
        if occurred_at is not None and occurred_at.tzinfo is not None:
            lags.append(max((received_at - occurred_at).total_seconds(), 0.0))
    family = GaugeMetricFamily(
        "plusmessage_receipt_lag_seconds",
        "Carrier event time to stored time, over the events received in the last 5 minutes",
        labels=["quantile"],
    )
    if lags:
        lags.sort()
        family.add_metric(["0.5"], statistics.median(lags))
        family.add_metric(["0.99"], lags[min(int(len(lags) * 0.99), len(lags) - 1)])
        family.add_metric(["1"], lags[-1])
    yield family
    yield GaugeMetricFamily(
        "plusmessage_receipt_lag_samples", "Events behind plusmessage_receipt_lag_seconds", value=len(lags)
    )


def campaign_families():
    by_status = dict(Campaign.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    family = GaugeMetricFamily("plusmessage_campaigns", "Campaigns by status", labels=["status"])
    for status in CampaignStatus.values:
        family.add_metric([status], by_status.get(status, 0))
    yield family
    targeted = GaugeMetricFamily(
        "plusmessage_campaign_targeted", "Recipients of a running or paused campaign", labels=["campaign"]
    )
    processed = GaugeMetricFamily(
        "plusmessage_campaign_processed", "Recipients sent, failed or cancelled so far", labels=["campaign"]
    )
    progress = GaugeMetricFamily(
        "plusmessage_campaign_progress_ratio", "Share of the recipients processed (0 to 1)", labels=["campaign"]
    )
    active = Campaign.objects.filter(status__in=[CampaignStatus.RUNNING, CampaignStatus.PAUSED]).order_by("id")
    for campaign_id, stats in campaigns_progress(list(active.only("id", "status")[:PROGRESS_CAMPAIGNS_MAX])).items():
        label = [str(campaign_id)]
        targeted.add_metric(label, stats["targeted"])
        processed.add_metric(label, stats["processed"])
        progress.add_metric(label, stats["progress"])
    yield from (targeted, processed, progress)


def webhook_families():
    by_status = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    family = GaugeMetricFamily(
        "plusmessage_webhook_deliveries", "Outbound webhook deliveries by status (failed = gave up)", labels=["status"]
    )
    for status in WebhookDeliveryStatus.values:
        family.add_metric([status], by_status.get(status, 0))
    yield family
    retrying = WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING, attempts__gt=0).count()
    yield GaugeMetricFamily(
        "plusmessage_webhook_deliveries_retrying", "Pending outbound webhook deliveries whose last attempt failed",
        value=retrying,
    )


def import_families():
    by_status = dict(ImportJob.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    jobs = GaugeMetricFamily("plusmessage_import_jobs", "Contact import jobs by status", labels=["status"])
    for status in ImportStatus.values:
        jobs.add_metric([status], by_status.get(status, 0))
    yield jobs
    durations = HistogramMetricFamily(
        "plusmessage_import_job_duration_seconds", "Duration of finished contact imports", labels=["status"]
    )
    for status in (ImportStatus.DONE, ImportStatus.FAILED):
        finished = ImportJob.objects.filter(
            status=status, started_at__isnull=False, finished_at__isnull=False
        ).values_list("started_at", "finished_at")
        seconds = [max((end - start).total_seconds(), 0.0) for start, end in finished]
        buckets = [(repr(bound), sum(1 for s in seconds if s <= bound)) for bound in IMPORT_BUCKETS]
        buckets.append(("+Inf", len(seconds)))
        durations.add_metric([str(status)], buckets, sum_value=sum(seconds))
    yield durations


def gateway_families():
    values = gateway_metrics.snapshot()
    requests = CounterMetricFamily(
        "plusmessage_gateway_requests",
        "HTTP requests to carriers by outcome (HTTP status, status class or transport error)",
        labels=["gateway", "operation", "outcome"],
    )
    waits = CounterMetricFamily(
        "plusmessage_gateway_throttle_waits", "Sends that waited for a token-bucket slot", labels=["gateway"]
    )
    waited = CounterMetricFamily(
        "plusmessage_gateway_throttle_wait_seconds", "Time sends waited for their slot", labels=["gateway"]
    )
    buckets: dict[tuple[str, str], dict[str, float]] = {}
    sums: dict[tuple[str, str], float] = {}
    for field, value in sorted(values.items()):
        kind, *labels = field.split("|")
        if kind == "req" and len(labels) == 3:
            requests.add_metric(labels, value)
        elif kind == "bucket" and len(labels) == 3:
            buckets.setdefault((labels[0], labels[1]), {})[labels[2]] = value
        elif kind == "seconds" and len(labels) == 2:
            sums[(labels[0], labels[1])] = value
        elif kind == "waits" and len(labels) == 1:
            waits.add_metric(labels, value)
        elif kind == "wait_seconds" and len(labels) == 1:
            waited.add_metric(labels, value)
    latency = HistogramMetricFamily(
        "plusmessage_gateway_request_duration_seconds", "Carrier request latency", labels=["gateway", "operation"]
    )
    for key, counts in sorted(buckets.items()):
        cumulative, running = [], 0.0
        for bound in (*map(repr, gateway_metrics.BUCKETS), "+Inf"):
            running += counts.get(bound, 0.0)
            cumulative.append((bound, running))
        latency.add_metric(list(key), cumulative, sum_value=sums.get(key, 0.0))
    yield from (requests, latency, waits, waited)
