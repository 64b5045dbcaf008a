"""Quiet hours: no promotions at night (an organization setting, default 21:00–09:00 Asia/Tokyo)."""

from datetime import datetime, time, timedelta

from django.utils import timezone


def time_in_window(value: time, start: time, end: time) -> bool:
    """Whether a wall-clock time falls in [start, end); a window may span midnight, and an empty
    one (start == end) holds nothing."""
    if start == end:
        return False
    if start < end:
        return start <= value < end
    return value >= start or value < end


def in_quiet_hours(organization, at: datetime | None = None) -> bool:
    """Whether ``at`` (now by default) falls in the organization's quiet hours, on the Japan wall
    clock (the project's TIME_ZONE)."""
    local = timezone.localtime(at or timezone.now())
    return time_in_window(local.time(), organization.quiet_hours_start, organization.quiet_hours_end)


def quiet_hours_end(organization, at: datetime | None = None) -> datetime:
    """The next moment the window opens again (``at`` itself if it is not quiet)."""
    at = at or timezone.now()
    if not in_quiet_hours(organization, at):
        return at
    local = timezone.localtime(at)
    opening = local.replace(
        hour=organization.quiet_hours_end.hour,
        minute=organization.quiet_hours_end.minute,
        second=organization.quiet_hours_end.second,
        microsecond=0,
    )
    if opening <= local:
        opening += timedelta(days=1)
    return opening
