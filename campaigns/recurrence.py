"""A recurring campaign's schedule: a five-field crontab on the Japan clock, said in words
(「毎週月曜 10:00」) and projected into the run times it will really have.

The words are what the composer offers (every day, every week on chosen days, every month on a day,
each at a time); anything else stays a raw crontab (the composer's advanced option) and is shown as
it is. The run times come from the very crontab class Celery beat evaluates for the campaign's
django-celery-beat row (``CrontabSchedule.schedule`` in ``BEAT_TIMEZONE``), so the calendar shows
what beat will do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django_celery_beat.models import CrontabSchedule

# The wall clock a campaign's crontab is read on (the beat rows are written with it).
BEAT_TIMEZONE = "Asia/Tokyo"


class RepeatKind:
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    CUSTOM = "custom"  # a raw crontab (advanced)


# Crontab day-of-week numbers (0 = Sunday) in the order a Japanese week is read out: Monday first.
WEEKDAY_ORDER = (1, 2, 3, 4, 5, 6, 0)
WORKDAYS = (1, 2, 3, 4, 5)


def weekday_name(number: int) -> str:
    """The short day name used in recurrences: 「月曜」, "Monday"."""
    names = {
        0: pgettext("recurrence weekday", "Sunday"),
        1: pgettext("recurrence weekday", "Monday"),
        2: pgettext("recurrence weekday", "Tuesday"),
        3: pgettext("recurrence weekday", "Wednesday"),
        4: pgettext("recurrence weekday", "Thursday"),
        5: pgettext("recurrence weekday", "Friday"),
        6: pgettext("recurrence weekday", "Saturday"),
    }
    return names[number % 7]


@dataclass(frozen=True)
class Recurrence:
    """A recurrence that can be said in words. ``weekdays`` are crontab numbers (0 = Sunday)."""

    kind: str
    at: time
    weekdays: tuple[int, ...] = field(default=())
    day: int | None = None

    def crontab(self) -> str:
        minute_hour = f"{self.at.minute} {self.at.hour}"
        if self.kind == RepeatKind.DAILY:
            return f"{minute_hour} * * *"
        if self.kind == RepeatKind.WEEKLY:
            ordered = sorted({d % 7 for d in self.weekdays}, key=WEEKDAY_ORDER.index)
            return f"{minute_hour} * * {','.join(str(d) for d in ordered)}"
        if self.kind == RepeatKind.MONTHLY:
            return f"{minute_hour} {self.day} * *"
        raise ValueError(f"not a recurrence in words: {self.kind}")

    def words(self) -> str:
        at = self.at.strftime("%H:%M")
        if self.kind == RepeatKind.DAILY:
            return _("Every day at %(time)s") % {"time": at}
        if self.kind == RepeatKind.WEEKLY:
            if tuple(sorted(self.weekdays)) == WORKDAYS:
                return _("Every weekday (Monday to Friday) at %(time)s") % {"time": at}
            ordered = sorted(set(self.weekdays), key=WEEKDAY_ORDER.index)
            days = pgettext("weekday list separator", ", ").join(weekday_name(d) for d in ordered)
            return _("Every %(days)s at %(time)s") % {"days": days, "time": at}
        return _("Every month on day %(day)d at %(time)s") % {"day": self.day, "time": at}


def _number(text: str, low: int, high: int) -> int | None:
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def _weekdays(text: str) -> tuple[int, ...] | None:
    days: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        first, last = _number(low, 0, 7), _number(high, 0, 7) if dash else _number(low, 0, 7)
        if first is None or last is None or first > last:
            return None
        days.update(d % 7 for d in range(first, last + 1))
    return tuple(sorted(days, key=WEEKDAY_ORDER.index))


def recurrence_parse(expression: str) -> Recurrence | None:
    """The recurrence in words a crontab means, or None when it cannot be said in words (then it is
    a raw crontab: several times a day, certain months, a step …)."""
    fields = (expression or "").split()
    if len(fields) != 5:
        return None
    minute, hour, dom, month, dow = fields
    minute_value, hour_value = _number(minute, 0, 59), _number(hour, 0, 23)
    if minute_value is None or hour_value is None or month != "*":
        return None
    at = time(hour_value, minute_value)
    if dom == "*":
        if dow == "*":
            return Recurrence(RepeatKind.DAILY, at)
        days = _weekdays(dow)
        if days is None:
            return None
        if len(days) == 7:
            return Recurrence(RepeatKind.DAILY, at)
        return Recurrence(RepeatKind.WEEKLY, at, weekdays=days)
    day = _number(dom, 1, 31)
    if day is not None and dow == "*":
        return Recurrence(RepeatKind.MONTHLY, at, day=day)
    return None


def recurrence_words(expression: str) -> str | None:
    """「毎週月曜 10:00」 / "Every Monday at 10:00" for a crontab that can be said in words, else None
    (show the crontab itself)."""
    recurrence = recurrence_parse(expression)
    return recurrence.words() if recurrence else None


def beat_crontab(expression: str) -> CrontabSchedule:
    """The (unsaved) django-celery-beat row a campaign with this crontab is scheduled with."""
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return CrontabSchedule(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                           day_of_week=day_of_week, timezone=ZoneInfo(BEAT_TIMEZONE))


def recurrence_runs(expression: str, start: datetime, end: datetime, *, limit: int = 1000) -> list[datetime]:
    """The times in [start, end) at which beat starts a run of this crontab (aware, Japan time), at
    most ``limit`` of them; none for a crontab beat could not read."""
    tz = ZoneInfo(BEAT_TIMEZONE)
    try:
        schedule = beat_crontab(expression).schedule
    except (ValueError, TypeError, KeyError):
        return []
    runs: list[datetime] = []
    # The crontab answers "the next run after the last one"; start just before ``start`` so a run at
    # ``start`` itself counts.
    cursor = start.astimezone(tz) - timedelta(seconds=1)
    while len(runs) < limit:
        last, delta, _now = schedule.remaining_delta(cursor, tz=tz)
        following = (last + delta).astimezone(tz)
        if following <= cursor or following >= end:
            break
        if following >= start:
            runs.append(following)
        cursor = following
    return runs
