"""A recurrence in words and its upcoming run times (campaigns.recurrence), on the Japan clock."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from campaigns.recurrence import (
    BEAT_TIMEZONE,
    Recurrence,
    RepeatKind,
    beat_crontab,
    recurrence_parse,
    recurrence_runs,
    recurrence_words,
)

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("crontab", "english", "japanese"),
    [
        ("0 10 * * 1", "Every Monday at 10:00", "毎週月曜 10:00"),
        ("30 9 * * *", "Every day at 09:30", "毎日 09:30"),
        ("0 12 1 * *", "Every month on day 1 at 12:00", "毎月1日 12:00"),
        ("0 22 * * 3,1", "Every Monday, Wednesday at 22:00", "毎週月曜・水曜 22:00"),
        ("0 8 * * 0,6", "Every Saturday, Sunday at 08:00", "毎週土曜・日曜 08:00"),
        ("0 9 * * 1-5", "Every weekday (Monday to Friday) at 09:00", "平日（月〜金） 09:00"),
        ("15 18 25 * *", "Every month on day 25 at 18:15", "毎月25日 18:15"),
        ("0 7 * * 0-6", "Every day at 07:00", "毎日 07:00"),
    ],
)
def test_words_in_english_and_japanese(crontab, english, japanese):
    assert recurrence_words(crontab) == english
    with translation.override("ja"):
        assert recurrence_words(crontab) == japanese


@pytest.mark.parametrize(
    "crontab", ["0 9,18 * * *", "*/30 9 * * *", "0 10 1 1 *", "0 10 1 * 1", "0 10 * * 1/2", "", "0 10 * *", "x y z a b"],
)
def test_a_crontab_without_words_has_none(crontab):
    assert recurrence_parse(crontab) is None
    assert recurrence_words(crontab) is None


def test_words_and_crontab_round_trip():
    for crontab in ["0 10 * * *", "5 9 * * 1,3,5", "30 21 31 * *", "0 0 * * 0"]:
        assert recurrence_parse(crontab).crontab() == crontab
    weekly = Recurrence(RepeatKind.WEEKLY, time(10, 0), weekdays=(0, 3, 1))
    assert weekly.crontab() == "0 10 * * 1,3,0"  # Monday first, Sunday last, as said in words


def test_the_beat_row_reads_the_crontab_on_the_japan_clock():
    row = beat_crontab("0 10 * * 1")
    assert str(row.timezone) == BEAT_TIMEZONE == "Asia/Tokyo"
    assert (row.minute, row.hour, row.day_of_month, row.month_of_year, row.day_of_week) == ("0", "10", "*", "*", "1")


def test_weekly_runs_fall_on_mondays_at_ten_japan_time():
    start = datetime(2026, 12, 1, tzinfo=TOKYO)
    runs = recurrence_runs("0 10 * * 1", start, datetime(2027, 1, 1, tzinfo=TOKYO))
    assert runs == [datetime(2026, 12, day, 10, 0, tzinfo=TOKYO) for day in (7, 14, 21, 28)]
    assert all(run.utcoffset() == timedelta(hours=9) for run in runs)
    # 10:00 in Tokyo is 01:00 UTC the same day.
    assert runs[0].astimezone(UTC) == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def test_a_run_just_after_midnight_in_tokyo_is_the_previous_day_in_utc():
    start = datetime(2026, 12, 1, tzinfo=TOKYO)
    runs = recurrence_runs("30 0 * * *", start, start + timedelta(days=3))
    assert [run.astimezone(UTC) for run in runs] == [
        datetime(2026, 11, 30, 15, 30, tzinfo=UTC), datetime(2026, 12, 1, 15, 30, tzinfo=UTC),
        datetime(2026, 12, 2, 15, 30, tzinfo=UTC)]


def test_runs_include_the_start_and_exclude_the_end():
    start = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
    assert recurrence_runs("0 10 * * 1", start, start + timedelta(days=7)) == [start]
    assert recurrence_runs("0 10 * * 1", start + timedelta(seconds=1), start + timedelta(days=7)) == []


def test_start_given_in_utc_is_read_on_the_japan_clock():
    start = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)  # 2026-12-07 00:00 in Tokyo
    runs = recurrence_runs("0 10 * * 1", start, start + timedelta(days=1))
    assert runs == [datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)]
    assert runs[0].tzinfo == TOKYO


def test_monthly_on_the_31st_skips_short_months():
    runs = recurrence_runs("0 10 31 * *", datetime(2027, 1, 1, tzinfo=TOKYO), datetime(2027, 6, 1, tzinfo=TOKYO))
    assert [run.date().isoformat() for run in runs] == ["2027-01-31", "2027-03-31", "2027-05-31"]


def test_a_raw_crontab_runs_as_beat_reads_it():
    start = datetime(2026, 12, 4, tzinfo=TOKYO)  # a Friday
    runs = recurrence_runs("0 9,18 * * 1-5", start, start + timedelta(days=4))
    assert [run.strftime("%m-%d %H:%M") for run in runs] == ["12-04 09:00", "12-04 18:00", "12-07 09:00",
                                                               "12-07 18:00"]


def test_runs_stop_at_the_limit_and_a_broken_crontab_has_none():
    start = datetime(2026, 12, 1, tzinfo=TOKYO)
    assert len(recurrence_runs("0 * * * *", start, start + timedelta(days=30), limit=50)) == 50
    assert recurrence_runs("0 25 * * *", start, start + timedelta(days=30)) == []
    assert recurrence_runs("nonsense", start, start + timedelta(days=30)) == []
