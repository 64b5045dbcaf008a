"""The audit log page for admins: filter by action, person and time; export the selection as CSV.

Actions show as words in the reader's language (audit.services.action_label), on the page, in the
filter and in the export; a person's number as the screen shows it (090-…)."""

import json
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.decorators import member_required
from audit.models import AuditEvent
from audit.services import ACTION_GROUP_LABELS, ACTIONS, action_label, audit_record
from core.csv import csv_lines, phone_cell
from core.paging import sorted_page
from core.phone import normalize_mobile

PAGE_SIZE = 100
AUDIT_SORTS = {"time": "occurred_at"}


def _date(value: str):
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        return None


def _label_filter(field: str, text: str) -> Q:
    """Part of a label; a full mobile number as the page shows it (090-1234-5678) finds its stored +81… form too."""
    query = Q(**{f"{field}__icontains": text})
    try:
        return query | Q(**{field: normalize_mobile(text)})
    except ValidationError:
        return query


def _filtered(request):
    events = AuditEvent.objects.filter(organization_id=request.organization.pk)
    action = request.GET.get("action", "")
    if action:
        events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
    who = request.GET.get("who", "").strip()
    if who:
        events = events.filter(_label_filter("actor_label", who))
    target = request.GET.get("target", "").strip()
    if target:
        events = events.filter(_label_filter("target_label", target))
    start, end = _date(request.GET.get("from", "")), _date(request.GET.get("to", ""))
    tz = timezone.get_current_timezone()
    if start:
        events = events.filter(occurred_at__gte=datetime.combine(start, time.min, tzinfo=tz))
    if end:
        events = events.filter(occurred_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz))
    return events


@member_required("manage")
@require_GET
def audit_log(request):
    page = sorted_page(_filtered(request), request.GET, sorts=AUDIT_SORTS, default="-time", size=PAGE_SIZE)
    query = request.GET.copy()
    for name in ("before", "after", "page", "sort"):
        query.pop(name, None)
    groups = {action.split(".")[0] + "." for action in ACTIONS}
    for event in page.rows:
        event.action_label = action_label(event.action)
        event.actor_display = phone_cell(event.actor_label)
        event.target_display = phone_cell(event.target_label)
    return render(
        request,
        "console/audit.html",
        {
            "events": page.rows,
            "page": page,
            "query": query.urlencode(),
            "actions": [(action, action_label(action)) for action in ACTIONS],
            "groups": [(group, str(label)) for group, label in ACTION_GROUP_LABELS.items() if group in groups],
            "values": {key: request.GET.get(key, "") for key in ("action", "who", "target", "from", "to")},
        },
    )


@member_required("manage")
@require_GET
def audit_export(request):
    """The filtered events as CSV (core.csv: UTF-8 with BOM, formula cells neutralised), actions in words."""
    events = _filtered(request).order_by("-occurred_at", "-id")
    audit_record("export.audit", request=request, details={"filters": request.GET.dict()})
    header = [_("At"), _("Action"), _("Action code"), _("Who"), _("Object type"), _("Object id"), _("Object"),
              _("IP address"), _("Details")]

    def values():
        for event in events.iterator(chunk_size=2000):
            yield [
                timezone.localtime(event.occurred_at).isoformat(), action_label(event.action), event.action,
                phone_cell(event.actor_label), event.target_type, event.target_id, phone_cell(event.target_label),
                event.ip_address,
                json.dumps(event.details, ensure_ascii=False),
            ]

    response = StreamingHttpResponse(csv_lines(header, values()), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
