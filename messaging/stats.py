"""Campaign statistics, read from the folded counters (never by counting Delivery rows)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Carrier
from campaigns.compliance import TOKYO
from campaigns.models import Campaign
from campaigns.status import TERMINAL
from core.carriers import RAKUTEN
from core.charts import percent, time_bucket_seconds
from messaging.counters import COUNTER_BUCKET_SECONDS, counter_rows, counter_span, counter_totals
from messaging.models import Metric

FUNNEL = [Metric.SENT, Metric.DELIVERED, Metric.READ]
# The carrier split's counters and the figure each gives.
CARRIER_METRICS = {Metric.DELIVERED_ON: "delivered", Metric.READ_ON: "read", Metric.FELL_BACK_ON: "fell_back"}


def carrier_split(counts: dict[tuple[str, str], int]) -> list[dict]:
    """Rows of the carrier split from ``counts`` of (metric, carrier) → n: delivered, read and fell
    back per carrier, with each one's share of the deliveries and its read rate. The carrier is the
    one the gateway reported; "" (it did not say) shows as "unknown". Known carriers first."""
    labels = {**dict(Carrier.choices), RAKUTEN: _("Rakuten Mobile"), "": _("unknown")}
    figures = defaultdict(lambda: dict.fromkeys(CARRIER_METRICS.values(), 0))
    for (metric, carrier), n in counts.items():
        if metric in CARRIER_METRICS and n:
            figures[carrier][CARRIER_METRICS[metric]] += n
    delivered_total = sum(values["delivered"] for values in figures.values())
    order = [*Carrier.values, RAKUTEN]
    rows = []
    for carrier in sorted(figures, key=lambda c: (order.index(c) if c in order else len(order), c)):
        values = figures[carrier]
        rows.append(
            {
                "carrier": carrier,
                "label": labels.get(carrier, carrier),
                **values,
                "delivered_share": percent(values["delivered"], delivered_total) or 0,
                "read_rate": percent(values["read"], values["delivered"]),
            }
        )
    return rows


def processed_and_progress(totals, status: str) -> tuple[int, float]:
    """(recipients processed, share processed) from a campaign's counter totals by metric."""
    targeted = totals.get(Metric.TARGETED, 0)
    # A message the carrier accepted and later reported failed counts as sent and as failed: cap.
    done = min(totals.get(Metric.SENT, 0) + totals.get(Metric.FAILED, 0) + totals.get(Metric.CANCELLED, 0), targeted)
    progress = (done / targeted) if targeted else (1.0 if status in TERMINAL else 0.0)
    return done, min(progress, 1.0)


def campaigns_progress(campaigns) -> dict[int, dict]:
    """{campaign id: {"targeted", "processed", "progress"}} for several campaigns in one query."""
    totals = counter_totals([campaign.id for campaign in campaigns])
    result = {}
    for campaign in campaigns:
        own = totals.get(campaign.id, {})
        done, progress = processed_and_progress(own, campaign.status)
        result[campaign.id] = {"targeted": own.get(Metric.TARGETED, 0), "processed": done, "progress": progress}
    return result


def _series_bucket(campaign: Campaign) -> int:
    """The chart's bucket width for the campaign: seconds for a short send, minutes, then hours."""
    span = counter_span(campaign.id, FUNNEL)
    seconds = (span[1] - span[0]).total_seconds() if span else 0
    return time_bucket_seconds(seconds, minimum=COUNTER_BUCKET_SECONDS)


def campaign_stats(campaign: Campaign) -> dict:
    """The campaign's figures from its counters. ``series`` holds sends, deliveries and reads per
    ``bucket_seconds`` (each point's ``at`` is its bucket's start), only the buckets that counted."""
    bucket = _series_bucket(campaign)
    offset = int(timezone.now().astimezone(TOKYO).utcoffset().total_seconds())
    rows = counter_rows(campaign.id, bucket, utc_offset_seconds=offset)
    totals = defaultdict(int)
    by_channel = {"rcs": defaultdict(int), "sms": defaultdict(int)}
    fallback_by_reason = defaultdict(int)
    failed_by_reason = defaultdict(int)
    skipped = defaultdict(int)
    series = defaultdict(lambda: defaultdict(int))
    by_carrier = defaultdict(int)
    for at, channel, metric, detail, count in rows:
        if metric in CARRIER_METRICS:
            by_carrier[(metric, detail)] += count
            continue
        totals[metric] += count
        if channel in by_channel:
            by_channel[channel][metric] += count
        if metric == Metric.FELL_BACK:
            fallback_by_reason[detail] += count
        elif metric == Metric.FAILED:
            failed_by_reason[detail or "unknown"] += count
        elif metric == Metric.SKIPPED:
            skipped[detail] += count
        if metric in FUNNEL:
            series[at][metric] += count

    targeted = totals[Metric.TARGETED]
    done, progress = processed_and_progress(totals, campaign.status)
    queued = max(targeted - done, 0)
    rate = _recent_rate(campaign.id)
    finished = campaign.status in TERMINAL
    return {
        "targeted": targeted,
        "skipped_opted_out": skipped["opted_out"],
        "skipped_no_consent": skipped["no_consent"],
        "skipped_frequency_cap": skipped["frequency_cap"],
        "queued": queued,
        "processed": done,
        "sent": totals[Metric.SENT],
        "delivered": totals[Metric.DELIVERED],
        "read": totals[Metric.READ],
        "failed": totals[Metric.FAILED],
        "cancelled": totals[Metric.CANCELLED],
        "clicked": totals[Metric.CLICKED],
        "replied": totals[Metric.REPLIED],
        "fell_back": totals[Metric.FELL_BACK],
        "fallback_by_reason": dict(fallback_by_reason),
        "failed_by_reason": dict(failed_by_reason),
        "by_channel": {channel: dict(values) for channel, values in by_channel.items()},
        "by_carrier": carrier_split(by_carrier),
        "series": [{"at": at, **{m.value: values[m] for m in FUNNEL}} for at, values in sorted(series.items())],
        "bucket_seconds": bucket,
        "progress": min(progress, 1.0),
        "rate_per_s": rate,
        "eta_seconds": (queued / rate) if rate and queued and not finished else None,
        "finished": finished,
    }


def _recent_rate(campaign_id: int) -> float:
    """Sends per second over the last three minutes that saw sends (from the stored buckets)."""
    now = timezone.now()
    sends = defaultdict(int)
    for at, _channel, metric, _detail, count in counter_rows(campaign_id, since=now - timedelta(seconds=180)):
        if metric == Metric.SENT and count:
            sends[at] += count
    if not sends:
        return 0.0
    span = max((now - min(sends)).total_seconds(), 1.0)
    return sum(sends.values()) / span
