"""Dashboard selectors: the organization's sends, delivery and read rates, and the charts' data.

Numbers come from the campaign counters (messaging.CampaignCounter plus the CounterDelta rows not
folded yet) — a few small rows per campaign and minute — never from counting Delivery rows. The two
tables are read in one UNION ALL statement, so a fold running meanwhile neither hides nor doubles a
delta. Totals of finished days are cached briefly; today's are always live. The chart geometry is
core.charts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import Case, F, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from core.charts import bar_chart, donut_chart, percent
from messaging.models import CampaignCounter, CounterDelta, Metric
from messaging.stats import CARRIER_METRICS, carrier_split

CHART_DAYS = 14
PAST_DAYS_CACHE_SECONDS = 300
METRICS = (Metric.SENT, Metric.DELIVERED, Metric.READ, Metric.FELL_BACK, Metric.FAILED, Metric.REPLIED,
           *CARRIER_METRICS)


def _rows_between(organization, start: datetime, end: datetime, tz):
    """(day, channel, metric, detail, total) for start <= minute < end: folded counters and pending
    deltas. The detail is kept for the carrier split (its counters' detail is the carrier)."""
    filters = {"campaign__organization": organization, "minute__gte": start, "minute__lt": end, "metric__in": METRICS}
    detail = Case(When(metric__in=list(CARRIER_METRICS), then=F("detail")), default=Value(""))
    folded = (
        CampaignCounter.objects.filter(**filters)
        .annotate(day=TruncDate("minute", tzinfo=tz), carrier=detail)
        .values("day", "channel", "metric", "carrier")
        .annotate(total=Sum("count"))
        .values_list("day", "channel", "metric", "carrier", "total")
        .order_by()
    )
    pending = (
        CounterDelta.objects.filter(**filters)
        .annotate(day=TruncDate("minute", tzinfo=tz), carrier=detail)
        .values("day", "channel", "metric", "carrier")
        .annotate(total=Sum("delta"))
        .values_list("day", "channel", "metric", "carrier", "total")
        .order_by()
    )
    return list(folded.union(pending, all=True))


def _daily_rows(organization, first_day: date, today: date, tz):
    """Per-day totals from ``first_day`` to today. Finished days change no more (the engine counts
    in the minute an event happens), so their totals are cached for a few minutes; today is always
    read live."""

    def start_of(day):
        return datetime.combine(day, time.min, tzinfo=tz)

    key = f"console:dashboard:v2:{organization.pk}:{first_day.isoformat()}:{today.isoformat()}"
    past = cache.get(key)
    if past is None:
        past = _rows_between(organization, start_of(first_day), start_of(today), tz)
        cache.set(key, past, PAST_DAYS_CACHE_SECONDS)
    return past + _rows_between(organization, start_of(today), start_of(today + timedelta(days=1)), tz)


def _percent_text(rate):
    return "—" if rate is None else f"{rate}%"


def _summary(totals):
    sent = totals[Metric.SENT]
    delivered = totals[Metric.DELIVERED]
    delivery_rate = percent(delivered, sent)
    read_rate = percent(totals[Metric.READ], totals[("rcs", Metric.DELIVERED)])  # only +Message reports reads
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
    for day, channel, metric, carrier, total in _daily_rows(organization, first_day, today, tz):
        bucket = per_day[day]
        if metric in CARRIER_METRICS:
            bucket[("carrier", metric, carrier)] += total
            continue
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
    month = totals_between(month_start, today)
    month_totals = _summary(month)
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
    by_carrier = carrier_split(
        {(key[1], key[2]): n for key, n in month.items() if isinstance(key, tuple) and key[0] == "carrier"}
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
        "by_carrier": by_carrier,
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
        share = min(100, int(done * 100 / targeted)) if targeted else 0
        result[campaign_id] = {"targeted": targeted, "done": done, "percent": share}
    return result
