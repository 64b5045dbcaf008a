"""The monitor of a launched campaign: live progress (polled, stops itself when finished), the funnel
and the per-minute chart, the recipient table with its filters and CSV export, and run control
(pause, resume, cancel). Numbers come from ``messaging.stats.campaign_stats`` (the counters), the
recipient table from the campaign's deliveries."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from audit.services import audit_record
from campaigns.compliance import TOKYO
from campaigns.models import CampaignStatus
from campaigns.views.common import (
    CONTROL_PERMISSIONS,
    MONITOR_PERMISSIONS,
    campaign_or_404,
    hx_or_redirect,
    member_permissions,
    require_any,
)
from core.charts import line_chart
from core.csv import csv_lines, phone_cell
from core.paging import sorted_page
from core.phone import national_format
from messaging import runs
from messaging.costs import campaign_actual_cost
from messaging.engine.failover import sms_failover_state
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason
from messaging.stats import campaign_stats

RECIPIENTS_PAGE = 50
RECIPIENT_SORTS = {"newest": "id"}
FINISHED_STATES = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED}
POLLING_STATES = {CampaignStatus.APPROVED, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED}


def _percent(part, whole) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return _("%(n)d s") % {"n": seconds}
    if seconds < 3600:
        return _("%(m)d min %(s)d s") % {"m": seconds // 60, "s": seconds % 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": (seconds % 3600) // 60}


def _funnel(stats: dict) -> list[dict]:
    targeted = stats.get("targeted") or 0
    steps = [
        ("targeted", _("Targeted"), targeted),
        ("sent", _("Sent"), stats.get("sent", 0)),
        ("delivered", _("Delivered"), stats.get("delivered", 0)),
        ("read", _("Read"), stats.get("read", 0)),
        ("clicked", _("Clicked"), stats.get("clicked", 0)),
        ("replied", _("Replied"), stats.get("replied", 0)),
    ]
    return [{"key": key, "label": label, "value": value, "percent": _percent(value, targeted),
             "width": max(_percent(value, targeted), 0.5 if value else 0)} for key, label, value in steps]


def bucket_label(seconds: int) -> str:
    """“per 10 seconds”, “per minute”, “per 3 hours”: the width of the chart's buckets."""
    if seconds < 60:
        return ngettext("per %(n)d second", "per %(n)d seconds", seconds) % {"n": seconds}
    if seconds < 3600:
        minutes = seconds // 60
        return _("per minute") if minutes == 1 else _("per %(n)d minutes") % {"n": minutes}
    hours = seconds // 3600
    return _("per hour") if hours == 1 else _("per %(n)d hours") % {"n": hours}


def chart_svg(series: list[dict], bucket_seconds: int = 60) -> dict:
    """Sends, deliveries and reads per bucket as SVG polylines, the time axis in Japan time."""
    lines = [("sent", _("Sent"), "sent"), ("delivered", _("Delivered"), "delivered"), ("read", _("Read"), "read")]
    chart = line_chart(series, lines, TOKYO, bucket_seconds)
    chart["per"] = bucket_label(bucket_seconds)
    return chart


def _monitor_context(request, campaign) -> dict:
    stats = campaign_stats(campaign)
    permissions = member_permissions(request)
    context = {
        "campaign": campaign,
        "stats": stats,
        "can_pause": bool(permissions & MONITOR_PERMISSIONS),
        "can_control": bool(permissions & CONTROL_PERMISSIONS),
        "finished": campaign.status in FINISHED_STATES,
        "sms_failover": sms_failover_state(campaign.official_account),
    }
    targeted = stats.get("targeted") or 0
    by_channel = stats.get("by_channel") or {}
    rcs_sent = (by_channel.get("rcs") or {}).get("sent", 0)
    sms_sent = (by_channel.get("sms") or {}).get("sent", 0)
    reasons = dict(FallbackReason.choices)
    context.update(
        {
            "finished": bool(stats.get("finished")) or campaign.status in FINISHED_STATES,
            "progress_percent": round(100.0 * float(stats.get("progress") or 0), 1),
            "rate": stats.get("rate_per_s") or 0,
            "eta": _duration(stats.get("eta_seconds")),
            "funnel": _funnel(stats),
            "rcs": by_channel.get("rcs") or {},
            "sms": by_channel.get("sms") or {},
            "rcs_share": _percent(rcs_sent, rcs_sent + sms_sent),
            "sms_share": _percent(sms_sent, rcs_sent + sms_sent),
            "fallback_reasons": sorted(
                ({"reason": reasons.get(k, k), "count": v, "percent": _percent(v, stats.get("fell_back") or 0)}
                 for k, v in (stats.get("fallback_by_reason") or {}).items()),
                key=lambda r: -r["count"],
            ),
            "failures": sorted(
                ({"code": k or _("unknown"), "count": v, "percent": _percent(v, stats.get("failed") or 0)}
                 for k, v in (stats.get("failed_by_reason") or {}).items()),
                key=lambda r: -r["count"],
            ),
            "skipped": (stats.get("skipped_opted_out") or 0) + (stats.get("skipped_no_consent") or 0)
            + (stats.get("skipped_frequency_cap") or 0),
            "chart": chart_svg(stats.get("series") or [], stats.get("bucket_seconds") or 60),
            "targeted": targeted,
        }
    )
    # Poll while sending may happen (launched, scheduled, running or paused); stop once finished,
    # and do not poll a campaign that has not been approved yet.
    context["polling"] = not context["finished"] and campaign.status in POLLING_STATES
    return context


def _monitor_permission(request):
    require_any(request, MONITOR_PERMISSIONS)


@member_required("view")
def campaign_monitor(request, pk):
    campaign = campaign_or_404(request, pk)
    _monitor_permission(request)
    context = _monitor_context(request, campaign)
    context.update(_recipients_context(request, campaign))
    context.update(_cost_context(campaign))
    return render(request, "campaigns/monitor.html", context)


@member_required("view")
def monitor_progress(request, pk):
    """The live region of the monitor; polled every 2 s, answers 286 (stop polling) when finished."""
    campaign = campaign_or_404(request, pk)
    _monitor_permission(request)
    context = _monitor_context(request, campaign)
    response = render(request, "campaigns/monitor.html#live", context)
    if not context["polling"]:
        response.status_code = 286
    return response


# The cost card reads the campaign's sent deliveries (messaging.costs): shared for this long by all
# viewers while sending, longer once finished (a late receipt can still record a send).
COST_MAX_AGE, FINISHED_COST_MAX_AGE = 30, 300


def _cost_context(campaign) -> dict:
    finished = campaign.status in FINISHED_STATES
    max_age = FINISHED_COST_MAX_AGE if finished else COST_MAX_AGE
    return {"campaign": campaign, "actual_cost": campaign_actual_cost(campaign, max_age=max_age),
            "cost_polling": not finished and campaign.status in POLLING_STATES}


@member_required("view")
def monitor_cost(request, pk):
    """The monitor's cost so far (priced deliveries: ``messaging.costs``, at most ``COST_MAX_AGE``
    seconds old); polled every 30 s while the campaign may send, answers 286 (stop polling) when it
    is finished."""
    campaign = campaign_or_404(request, pk)
    _monitor_permission(request)
    context = _cost_context(campaign)
    response = render(request, "campaigns/_monitor_cost.html", context)
    if not context["cost_polling"]:
        response.status_code = 286
    return response


def phone_filter(query: str) -> dict:
    """Filter deliveries by a typed number: “090-1234”, “０９０１２３４５６７８” and “+8190…” match the start
    of the E.164 number (an index range scan); other digits (“5678”) match anywhere."""
    text = unicodedata.normalize("NFKC", query).strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return {"pk__in": []}
    if text.startswith("+") or (digits.startswith("81") and len(digits) >= 11):
        prefix = "+" + digits
    elif digits.startswith("0"):
        prefix = "+81" + digits[1:]
    else:
        return {"contact__phone__contains": digits}
    # A range as well as LIKE: the range lets the (organization, phone) index serve any collation.
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return {"contact__phone__startswith": prefix, "contact__phone__gte": prefix, "contact__phone__lt": upper}


def _recipients_context(request, campaign) -> dict:
    rows = Delivery.objects.filter(campaign=campaign).select_related("contact")
    status = request.GET.get("status", "")
    channel = request.GET.get("channel", "")
    query = request.GET.get("q", "").strip()
    if status.isdigit() and int(status) in DeliveryStatus.values:
        rows = rows.filter(status=int(status))
    else:
        status = ""
    if channel in Channel.values:
        rows = rows.filter(channel=channel)
    elif channel == "none":
        rows = rows.filter(channel="")
    else:
        channel = ""
    if query:
        rows = rows.filter(contact__organization=campaign.organization_id, **phone_filter(query))
    page = sorted_page(rows, request.GET, sorts=RECIPIENT_SORTS, default="-newest", size=RECIPIENTS_PAGE)
    for delivery in page.rows:
        delivery.phone_display = national_format(delivery.contact.phone)
    filters = {"status": status, "channel": channel, "q": query}
    return {
        "recipients": page.rows,
        "page": page,
        "filters": filters,
        "filter_query": urlencode({k: v for k, v in filters.items() if v}),
        "status_choices": DeliveryStatus.choices,
        "channel_choices": Channel.choices,
    }


@member_required("view")
def monitor_recipients(request, pk):
    campaign = campaign_or_404(request, pk)
    _monitor_permission(request)
    context = {"campaign": campaign, **_recipients_context(request, campaign)}
    return render(request, "campaigns/monitor.html#recipients", context)


def _local(moment):
    return timezone.localtime(moment, TOKYO).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


@member_required("view")
def monitor_export(request, pk):
    """Every delivery of the campaign as CSV, streamed in chunks (constant memory)."""
    campaign = campaign_or_404(request, pk)
    _monitor_permission(request)
    statuses = dict(DeliveryStatus.choices)
    channels = dict(Channel.choices)
    reasons = dict(FallbackReason.choices)
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("uuid", "contact__phone", "contact__name", "status", "channel", "fallback_reason",
                     "error_code", "error_reason", "sent_at", "delivered_at", "read_at", "failed_at")
    )
    header = [_("Message id"), _("Mobile number"), _("Name"), _("Status"), _("Channel"), _("Fallback reason"),
              _("Error code"), _("Error reason"), _("Sent at"), _("Delivered at"), _("Read at"), _("Failed at")]

    def values():
        for (uuid, phone, name, status, channel, fallback, code, reason, sent, delivered, read, failed) in rows.iterator(
            chunk_size=2000
        ):
            yield (uuid, phone_cell(phone), name, statuses.get(status, status), channels.get(channel, channel),
                   reasons.get(fallback, fallback), code, reason, _local(sent), _local(delivered), _local(read),
                   _local(failed))

    audit_record("export.recipients", request=request, target=campaign)
    response = StreamingHttpResponse(csv_lines(header, values()), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), TOKYO).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-deliveries-{stamp}.csv"'
    return response


def _control(request, pk, service, permissions, success_message):
    """Call one run-control service (pause, resume, cancel); its refusal becomes a message."""
    campaign = campaign_or_404(request, pk)
    require_any(request, permissions)
    try:
        service(campaign, request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success_message)
    return hx_or_redirect(request, reverse("campaigns:monitor", args=[pk]))


@require_POST
@member_required("view")
def campaign_pause(request, pk):
    return _control(request, pk, runs.campaign_pause, MONITOR_PERMISSIONS, _("Paused. No new messages are sent."))


@require_POST
@member_required("view")
def campaign_resume(request, pk):
    return _control(request, pk, runs.campaign_resume, CONTROL_PERMISSIONS, _("Resumed."))


@require_POST
@member_required("view")
def campaign_cancel(request, pk):
    return _control(request, pk, runs.campaign_cancel, CONTROL_PERMISSIONS,
                    _("Cancelled. Messages not yet sent will not be sent."))
