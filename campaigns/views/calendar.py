"""The campaign calendar: a month or a week (Sunday first, as Japanese calendars are) of scheduled,
recurring (their upcoming runs) and sent campaigns, with the organization's quiet hours shaded.
Server-rendered; moving between months or weeks swaps the ``calendar`` partial (HTMX) and plain
links work without JavaScript."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.shortcuts import render
from django.utils import timezone

from accounts.decorators import member_required
from campaigns.calendar import calendar_entries
from campaigns.compliance import TOKYO
from campaigns.views.common import member_permissions
from core.quiet_hours import time_in_window

MONTH, WEEK = "month", "week"
ENTRIES_PER_DAY = 4  # a month cell shows this many; the rest are behind “+N more” (the week view)
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


def _anchor(value: str, today: date) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return today
    return min(max(day, EARLIEST), LATEST)


def _sunday_on_or_before(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _hour_quiet(organization, hour: int) -> str:
    """"quiet" when the whole hour is in quiet hours, "partly" when some of it is, else ""."""
    start, end = organization.quiet_hours_start, organization.quiet_hours_end
    minutes = [time_in_window(time(hour, minute), start, end) for minute in range(60)]
    if all(minutes):
        return "quiet"
    return "partly" if any(minutes) else ""


@member_required("view")
def campaign_calendar(request):
    organization = request.organization
    view = request.GET.get("view") if request.GET.get("view") in (MONTH, WEEK) else MONTH
    today = timezone.localdate(timezone.now(), TOKYO)
    anchor = _anchor(request.GET.get("date", ""), today)
    if view == MONTH:
        first = anchor.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        grid_start = _sunday_on_or_before(first)
        grid_end = _sunday_on_or_before(following - timedelta(days=1)) + timedelta(days=7)
        previous, upcoming = (first - timedelta(days=1)).replace(day=1), following
    else:
        first = grid_start = _sunday_on_or_before(anchor)
        grid_end = grid_start + timedelta(days=7)
        previous, upcoming = grid_start - timedelta(days=7), grid_end
    start = datetime.combine(grid_start, time.min, tzinfo=TOKYO)
    end = datetime.combine(grid_end, time.min, tzinfo=TOKYO)
    entries = calendar_entries(organization, start, end)
    by_day = defaultdict(list)
    for entry in entries:
        by_day[entry.at.date()].append(entry)
    days = []
    for offset in range((grid_end - grid_start).days):
        day = grid_start + timedelta(days=offset)
        day_entries = by_day.get(day, [])
        days.append({
            "date": day,
            "entries": day_entries[:ENTRIES_PER_DAY] if view == MONTH else day_entries,
            "more": max(0, len(day_entries) - ENTRIES_PER_DAY) if view == MONTH else 0,
            "in_month": view == WEEK or day.month == first.month,
            "is_today": day == today,
            "weekday": (day.weekday() + 1) % 7,  # 0 = Sunday, 6 = Saturday
        })
    hours = []
    if view == WEEK:
        for hour in range(24):
            hours.append({
                "hour": hour,
                "quiet": _hour_quiet(organization, hour),
                "cells": [{"date": d["date"], "is_today": d["is_today"],
                           "entries": [e for e in d["entries"] if e.at.hour == hour]} for d in days],
            })
    context = {
        "view": view,
        "first": first,
        "last": grid_end - timedelta(days=1),
        "today": today,
        "previous": previous,
        "upcoming": upcoming,
        "weeks": [days[index:index + 7] for index in range(0, len(days), 7)],
        "days": days,
        "hours": hours,
        "has_entries": bool(entries),
        "quiet_start": organization.quiet_hours_start,
        "quiet_end": organization.quiet_hours_end,
        "has_quiet_hours": organization.quiet_hours_start != organization.quiet_hours_end,
        "can_compose": "compose" in member_permissions(request),
    }
    if request.htmx and request.htmx.target == "calendar":
        return render(request, "campaigns/calendar.html#calendar", context)
    return render(request, "campaigns/calendar.html", context)
