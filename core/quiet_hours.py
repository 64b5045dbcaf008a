"""Quiet hours: no promotions at night (an organization setting, default 21:00–09:00 Asia/Tokyo)."""

from datetime import datetime, timedelta

from django.utils import timezone


def in_quiet_hours(organization, at: datetime | None = None) -> bool:
    local = timezone.localtime(at or timezone.now())
    start, end, now = organization.quiet_hours_start, organization.quiet_hours_end, local.time()
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


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
