"""core.business_hours: when the closed window an away message is sent once in began."""

from datetime import datetime, time

from django.utils import timezone

from core.business_hours import closed_since

TOKYO = timezone.get_fixed_timezone(9 * 60)
OPEN, CLOSE, WEEKDAYS = time(10, 0), time(18, 0), "12345"


def at(day, hour, minute=0):
    return datetime(2026, 11, day, hour, minute, tzinfo=TOKYO)  # 2026-11-30 is a Monday


def test_away_message_window_is_none_inside_business_hours_and_without_hours():
    assert closed_since(at(30, 10), OPEN, CLOSE, WEEKDAYS) is None
    assert closed_since(at(30, 17, 59), OPEN, CLOSE, WEEKDAYS) is None
    assert closed_since(at(30, 22), None, None, WEEKDAYS) is None


def test_away_message_window_starts_at_the_last_closing():
    monday_close = at(30, 18)
    assert closed_since(at(30, 18), OPEN, CLOSE, WEEKDAYS) == monday_close
    assert closed_since(datetime(2026, 12, 1, 9, 59, tzinfo=TOKYO), OPEN, CLOSE, WEEKDAYS) == monday_close
    # the weekend belongs to Friday evening's window
    friday_close = at(27, 18)
    assert closed_since(at(28, 12), OPEN, CLOSE, WEEKDAYS) == friday_close
    assert closed_since(at(30, 9), OPEN, CLOSE, WEEKDAYS) == friday_close
    # before Monday opens with only Monday as a business day: last Monday's closing
    assert closed_since(at(30, 9), OPEN, CLOSE, "1") == at(23, 18)
