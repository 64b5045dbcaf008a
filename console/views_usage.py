"""Monthly usage: messages and cost by official account, channel and carrier for one month (Japan
time), for the whole organization or one official account, and its CSV export. Owners, admins and
marketers (who see the estimate before each launch) may read it. Numbers from ``messaging.costs``."""

from __future__ import annotations

from datetime import date

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.decorators import member_required
from accounts.models import OfficialAccount
from accounts.pricing import format_yen
from audit.services import audit_record
from campaigns.compliance import TOKYO
from campaigns.views.common import require_any
from core.csv import csv_lines
from messaging.costs import monthly_usage

USAGE_PERMISSIONS = {"manage", "compose"}


def _month(request) -> date:
    """The month asked for as ?month=YYYY-MM; this month (Japan time) when absent or malformed."""
    text = request.GET.get("month", "")
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except (TypeError, ValueError):
        return timezone.localtime(timezone.now(), TOKYO).date().replace(day=1)


def _account(request) -> OfficialAccount | None:
    account_id = request.GET.get("account", "")
    if not account_id.isdigit():
        return None
    return get_object_or_404(OfficialAccount, pk=int(account_id), organization=request.organization)


def _shift(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@member_required("view")
def usage(request):
    require_any(request, USAGE_PERMISSIONS)
    month, account = _month(request), _account(request)
    result = monthly_usage(request.organization, month, TOKYO, account.pk if account else None)
    return render(
        request,
        "console/usage.html",
        {
            "usage": result,
            "month": month,
            "month_value": month.strftime("%Y-%m"),
            "previous_month": _shift(month, -1).strftime("%Y-%m"),
            "next_month": _shift(month, 1).strftime("%Y-%m"),
            "account": account,
            "accounts": OfficialAccount.objects.filter(organization=request.organization).order_by("display_name"),
        },
    )


@member_required("view")
def usage_export(request):
    require_any(request, USAGE_PERMISSIONS)
    month, account = _month(request), _account(request)
    result = monthly_usage(request.organization, month, TOKYO, account.pk if account else None)
    header = [_("Month"), _("Official account"), _("Channel (rcs = +Message, sms = SMS)"), _("Carrier"), _("Messages"), _("SMS segments"),
              _("Cost (yen)"), _("Messages without a price")]
    month_text = month.strftime("%Y-%m")
    rows = []
    for item in result.accounts:
        name = item.account.display_name if item.account else _("(deleted account)")
        for line in item.lines:
            # The channel as its code: "+Message" would start like a formula and get a quote (core.csv).
            rows.append([month_text, name, line.channel, line.carrier_label, line.messages,
                         line.segments if line.channel == "sms" else "", format_yen(line.cost).replace(",", ""),
                         line.unpriced])
    audit_record("export.usage", request=request, target=account,
                 details={"month": month_text, "official_account": account.pk if account else None})
    response = HttpResponse("".join(csv_lines(header, rows)), content_type="text/csv; charset=utf-8")
    suffix = f"-account-{account.pk}" if account else ""
    response["Content-Disposition"] = f'attachment; filename="usage-{month_text}{suffix}.csv"'
    return response
