"""Dashboard selectors: the organization's sends, delivery and read rates, and chart geometry.

Numbers come from the campaign counters (messaging.CampaignCounter plus the CounterDelta rows not
folded yet) — a few small rows per campaign and minute — never from counting Delivery rows. The two
tables are read in one UNION ALL statement, so a fold running meanwhile neither hides nor doubles a
delta. Totals of finished days are cached briefly; today's are always live.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from messaging.models import CampaignCounter, CounterDelta, Metric

CHART_DAYS = 14
PAST_DAYS_CACHE_SECONDS = 300
METRICS = (Metric.SENT, Metric.DELIVERED, Metric.READ, Metric.FELL_BACK, Metric.FAILED, Metric.REPLIED)


def _rows_between(organization, start: datetime, end: datetime, tz):
    """(day, channel, metric, total) for start <= minute < end: folded counters and pending deltas."""
    filters = {"campaign__organization": organization, "minute__gte": start, "minute__lt": end, "metric__in": METRICS}
    folded = (
        CampaignCounter.objects.filter(**filters)
        .annotate(day=TruncDate("minute", tzinfo=tz))
        .values("day", "channel", "metric")
        .annotate(total=Sum("count"))
        .values_list("day", "channel", "metric", "total")
        .order_by()
    )
    pending = (
        CounterDelta.objects.filter(**filters)
        .annotate(day=TruncDate("minute", tzinfo=tz))
        .values("day", "channel", "metric")
        .annotate(total=Sum("delta"))
        .values_list("day", "channel", "metric", "total")
        .order_by()
    )
    return list(folded.union(pending, all=True))


def _daily_rows(organization, first_day: date, today: date, tz):
    """Per-day totals from ``first_day`` to today. Finished days change no more (the engine counts
    in the minute an event happens), so their totals are cached for a few minutes; today is always
    read live."""

    def start_of(day):
        return datetime.combine(day, time.min, tzinfo=tz)

    key = f"console:dashboard:{organization.pk}:{first_day.isoformat()}:{today.isoformat()}"
    past = cache.get(key)
    if past is None:
        past = _rows_between(organization, start_of(first_day), start_of(today), tz)
        cache.set(key, past, PAST_DAYS_CACHE_SECONDS)
    return past + _rows_between(organization, start_of(today), start_of(today + timedelta(days=1)), tz)


def _rate(part, whole):
    return round(part * 100 / whole, 1) if whole else None


def _percent_text(rate):
    return "—" if rate is None else f"{rate}%"


def _summary(totals):
    sent = totals[Metric.SENT]
    delivered = totals[Metric.DELIVERED]
    delivery_rate = _rate(delivered, sent)
    read_rate = _rate(totals[Metric.READ], totals[("rcs", Metric.DELIVERED)])  # only +Message reports reads
    return {
        "sent": sent,
        "rcs": totals[("rcs", Metric.SENT)],
        "sms": totals[("sms", Metric.SENT)],
        "delivered": delivered,
        "read": totals[Metric.READ],
        "failed": totals[Metric.FAILED],
        "fell_back": totals[Metric.FELL_BACK],
        "replied": totals[Metric.REPLIED],
        "delivery_rate": delivery_rate,
        "read_rate": read_rate,
        "delivery_rate_text": _percent_text(delivery_rate),
        "read_rate_text": _percent_text(read_rate),
    }


def dashboard_data(organization, now=None) -> dict:
    tz = ZoneInfo(settings.TIME_ZONE)
    now = timezone.localtime(now or timezone.now(), tz)
    today = now.date()
    month_start = today.replace(day=1)
    chart_start = today - timedelta(days=CHART_DAYS - 1)
    first_day = min(month_start, chart_start)

    per_day: dict[date, dict] = defaultdict(lambda: defaultdict(int))
    for day, channel, metric, total in _daily_rows(organization, first_day, today, tz):
        bucket = per_day[day]
        bucket[metric] += total
        bucket[(channel, metric)] += total

    def totals_between(start: date, end: date):
        totals = defaultdict(int)
        for day, bucket in per_day.items():
            if start <= day <= end:
                for key, value in bucket.items():
                    totals[key] += value
        return totals

    today_totals = _summary(totals_between(today, today))
    month_totals = _summary(totals_between(month_start, today))
    days = [chart_start + timedelta(days=offset) for offset in range(CHART_DAYS)]
    chart = bar_chart(
        [(day, per_day[day][("rcs", Metric.SENT)], per_day[day][("sms", Metric.SENT)]) for day in days]
    )
    donut = donut_chart(
        [
            ("rcs", month_totals["rcs"]),
            ("sms", month_totals["sms"]),
        ]
    )
    campaigns = Campaign.objects.filter(organization=organization).select_related("official_account")
    running = list(
        campaigns.filter(status__in=[CampaignStatus.RUNNING, CampaignStatus.PAUSED]).order_by("-started_at")[:6]
    )
    scheduled = list(campaigns.filter(status=CampaignStatus.SCHEDULED).order_by("scheduled_at")[:6])
    progress = _campaign_progress([campaign.pk for campaign in running])
    for campaign in running:
        campaign.dashboard_progress = progress.get(campaign.pk, {"targeted": 0, "done": 0, "percent": 0})
    pending_approval = Campaign.objects.filter(
        organization=organization, status=CampaignStatus.PENDING_APPROVAL
    ).count()
    return {
        "today": today_totals,
        "month": month_totals,
        "chart": chart,
        "donut": donut,
        "running": running,
        "scheduled": scheduled,
        "pending_approval": pending_approval,
        "now": now,
    }


PROGRESS_METRICS = (Metric.TARGETED, Metric.SENT, Metric.FAILED, Metric.CANCELLED)


def _campaign_progress(campaign_ids) -> dict:
    """Targeted and finished (sent, failed or cancelled) counts per running campaign, from counters."""
    if not campaign_ids:
        return {}
    filters = {"campaign_id__in": campaign_ids, "metric__in": PROGRESS_METRICS}
    folded = (
        CampaignCounter.objects.filter(**filters)
        .values("campaign_id", "metric")
        .annotate(total=Sum("count"))
        .values_list("campaign_id", "metric", "total")
        .order_by()
    )
    pending = (
        CounterDelta.objects.filter(**filters)
        .values("campaign_id", "metric")
        .annotate(total=Sum("delta"))
        .values_list("campaign_id", "metric", "total")
        .order_by()
    )
    totals: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for campaign_id, metric, total in folded.union(pending, all=True):
        totals[campaign_id][metric] += total
    result = {}
    for campaign_id, counts in totals.items():
        targeted = counts[Metric.TARGETED]
        done = counts[Metric.SENT] + counts[Metric.FAILED] + counts[Metric.CANCELLED]
        percent = min(100, int(done * 100 / targeted)) if targeted else 0
        result[campaign_id] = {"targeted": targeted, "done": done, "percent": percent}
    return result


# --- server-rendered SVG geometry ---------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_PAD_LEFT, CHART_PAD_BOTTOM, CHART_PAD_TOP = 560, 200, 40, 22, 10


def _nice_ceiling(value: int) -> int:
    """A round axis maximum at or above ``value`` whose half is a whole number too."""
    if value <= 4:
        return 4
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def bar_chart(series):
    """Stacked bars (+Message below, SMS above) for [(day, rcs, sms), …]; returns drawing data."""
    peak = max([rcs + sms for _day, rcs, sms in series] + [0])
    top = _nice_ceiling(peak)
    plot_w = CHART_WIDTH - CHART_PAD_LEFT - 8
    plot_h = CHART_HEIGHT - CHART_PAD_BOTTOM - CHART_PAD_TOP
    slot = plot_w / max(len(series), 1)
    bar_w = slot * 0.62
    bars = []
    for index, (day, rcs, sms) in enumerate(series):
        x = CHART_PAD_LEFT + index * slot + (slot - bar_w) / 2
        rcs_h = plot_h * rcs / top
        sms_h = plot_h * sms / top
        base = CHART_PAD_TOP + plot_h
        bars.append(
            {
                "x": round(x, 1),
                "w": round(bar_w, 1),
                "rcs_y": round(base - rcs_h, 1),
                "rcs_h": round(rcs_h, 1),
                "sms_y": round(base - rcs_h - sms_h, 1),
                "sms_h": round(sms_h, 1),
                "label_x": round(x + bar_w / 2, 1),
                "day": day,
                "rcs": rcs,
                "sms": sms,
                "total": rcs + sms,
                "show_label": index % 2 == (len(series) - 1) % 2,
            }
        )
    grid = []
    for fraction in (0, 0.5, 1):
        y = CHART_PAD_TOP + plot_h * (1 - fraction)
        grid.append({"y": round(y, 1), "value": int(top * fraction)})
    return {
        "bars": bars,
        "grid": grid,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_PAD_LEFT,
        "right": CHART_WIDTH - 8,
        "label_y": CHART_HEIGHT - 6,
        "empty": peak == 0,
    }


DONUT_R = 52
DONUT_C = 2 * math.pi * DONUT_R


def donut_chart(parts):
    """Stroke-dasharray segments of a ring for [(key, value), …]."""
    total = sum(value for _key, value in parts)
    segments = []
    offset = 0.0
    for key, value in parts:
        length = DONUT_C * value / total if total else 0
        segments.append(
            {
                "key": key,
                "value": value,
                "percent": _rate(value, total),
                "dash": f"{length:.2f} {DONUT_C - length:.2f}",
                "offset": f"{-offset:.2f}",
            }
        )
        offset += length
    return {"segments": segments, "total": total, "r": DONUT_R, "circumference": f"{DONUT_C:.2f}"}
