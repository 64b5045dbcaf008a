"""Recurring campaigns: checking a five-field crontab (Japan time) and reading it out to a person."""

from __future__ import annotations

from cron_descriptor import Options, get_description
from django.utils.translation import gettext_lazy as _

_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def crontab_problem(expression: str) -> str | None:
    """Why a five-field crontab is not acceptable, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return str(_("Give five fields: minute hour day-of-month month day-of-week, e.g. “0 10 * * 1”."))
    names = [_("minute"), _("hour"), _("day of month"), _("month"), _("day of week")]
    for text, (low, high), name in zip(fields, _CRON_RANGES, names, strict=True):
        for part in text.split(","):
            body, _slash, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return str(_("The %(field)s field “%(value)s” is not valid.") % {"field": name, "value": text})
            if body == "*":
                continue
            bounds = body.split("-", 1)
            if not all(b.isdigit() and low <= int(b) <= high for b in bounds):
                return str(_("The %(field)s field “%(value)s” is not valid (%(low)d–%(high)d).")
                           % {"field": name, "value": text, "low": low, "high": high})
    if fields[0] == "*" or fields[0].startswith("*/"):
        return str(_("Sending every minute is not allowed; give a fixed minute, e.g. “0 10 * * 1”."))
    return None


def crontab_summary(expression: str) -> str:
    """A short human reading of a crontab, e.g. “Every Monday at 10:00”."""
    fields = (expression or "").split()
    if len(fields) != 5 or crontab_problem(expression):
        return ""
    minute, hour, dom, month, dow = fields
    if minute.isdigit() and hour.isdigit():
        at = f"{int(hour):02d}:{int(minute):02d}"
        days = [_("Sunday"), _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday")]
        if dom == "*" and month == "*":
            if dow == "*":
                return str(_("Every day at %(time)s (Japan time)") % {"time": at})
            if dow in ("1-5", "MON-FRI"):
                return str(_("Every weekday at %(time)s (Japan time)") % {"time": at})
            parts = dow.split(",")
            if all(p.isdigit() and 0 <= int(p) <= 7 for p in parts):
                names = str(_(", ")).join(str(days[int(p) % 7]) for p in parts)  # “・” in Japanese
                return str(_("Every %(days)s at %(time)s (Japan time)") % {"days": names, "time": at})
        if dom.isdigit() and month == "*" and dow == "*":
            return str(_("On day %(day)s of every month at %(time)s (Japan time)") % {"day": dom, "time": at})
    try:
        options = Options()
        options.use_24hour_time_format = True
        return get_description(expression, options)
    except Exception:  # noqa: BLE001 - a summary is a nicety; the expression was validated above
        return ""
