"""Business hours: when an organization's people answer the inbox (a setting per organization).

Outside them the inbox sends an away message, once per conversation per closed window
(``messaging.automation``). A closed window runs from the end of one business day's hours to the
start of the next business day's; ``closed_since`` names when the current one began, which is what
"once per window" compares against. Wall-clock times are Japan time (the project's TIME_ZONE).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

WEEKDAYS = "1234567"  # ISO weekdays, Monday = 1


def parse_days(days: str) -> set[int]:
    return {int(day) for day in days or "" if day in WEEKDAYS}


def closed_since(at: datetime, start: time | None, end: time | None, days: str) -> datetime | None:
    """None when ``at`` falls in business hours (or no hours are set); otherwise the moment the
    current closed window began: the end of the latest business hours before ``at`` (a week back
    at most; with no business day at all, a week before ``at``).

    Hours run from ``start`` to ``end`` on each business day; ``start`` is before ``end`` (the form
    refuses hours across midnight)."""
    if start is None or end is None or start >= end:
        return None
    business_days = parse_days(days)
    local = timezone.localtime(at)
    latest_end = None
    for back in range(8):
        day = (local - timedelta(days=back)).date()
        if day.isoweekday() not in business_days:
            continue
        opening = timezone.make_aware(datetime.combine(day, start), local.tzinfo)
        closing = timezone.make_aware(datetime.combine(day, end), local.tzinfo)
        if opening <= local < closing:
            return None
        if closing <= local and (latest_end is None or closing > latest_end):
            latest_end = closing
    return latest_end if latest_end is not None else local - timedelta(days=7)
