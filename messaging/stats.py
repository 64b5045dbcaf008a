"""Campaign statistics, read from the folded counters (never by counting Delivery rows)."""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from campaigns.models import Campaign
from campaigns.status import TERMINAL
from messaging.counters import counter_rows, counter_totals
from messaging.models import Metric

FUNNEL = [Metric.SENT, Metric.DELIVERED, Metric.READ]


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


def campaign_stats(campaign: Campaign) -> dict:
    rows = counter_rows(campaign.id)
    totals = defaultdict(int)
    by_channel = {"rcs": defaultdict(int), "sms": defaultdict(int)}
    fallback_by_reason = defaultdict(int)
    failed_by_reason = defaultdict(int)
    skipped = defaultdict(int)
    series = defaultdict(lambda: defaultdict(int))
    for minute, channel, metric, detail, count in rows:
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
            series[minute][metric] += count

    targeted = totals[Metric.TARGETED]
    done, progress = processed_and_progress(totals, campaign.status)
    queued = max(targeted - done, 0)
    rate = _recent_rate(series)
    finished = campaign.status in TERMINAL
    return {
        "targeted": targeted,
        "skipped_opted_out": skipped["opted_out"],
        "skipped_no_consent": skipped["no_consent"],
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
        "series": [
            {"minute": minute, **{m.value: values[m] for m in FUNNEL}} for minute, values in sorted(series.items())
        ],
        "progress": min(progress, 1.0),
        "rate_per_s": rate,
        "eta_seconds": (queued / rate) if rate and queued and not finished else None,
        "finished": finished,
    }


def _recent_rate(series) -> float:
    """Sends per second over the last two minutes that saw sends."""
    now = timezone.now()
    recent = [(minute, values[Metric.SENT]) for minute, values in series.items() if values[Metric.SENT]]
    recent = [item for item in recent if (now - item[0]).total_seconds() < 180]
    if not recent:
        return 0.0
    recent.sort()
    span = max((now - recent[0][0]).total_seconds(), 1.0)
    return sum(n for _, n in recent) / span
