"""The monitor chart's geometry (core.charts): round value ticks, time ticks on round local times,
buckets that fit the span, and lines (never lone dots) with the empty buckets drawn as zeros."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.charts import line_chart, time_bucket_seconds, time_ticks, value_ticks

TOKYO = ZoneInfo("Asia/Tokyo")
LINES = [("sent", "Sent", "sent"), ("read", "Read", "read")]


@pytest.mark.parametrize(
    "peak, expected",
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 2, 4, 6, 8, 10]),
        (37, [0, 10, 20, 30, 40]),
        (1234, [0, 500, 1000, 1500]),
        (98_765, [0, 20_000, 40_000, 60_000, 80_000, 100_000]),
    ],
)
def test_value_ticks_are_whole_round_numbers_without_repeats(peak, expected):
    ticks = value_ticks(peak)
    assert ticks == expected
    assert len(set(ticks)) == len(ticks) and ticks[-1] >= peak


@pytest.mark.parametrize(
    "span, bucket",
    [(0, 10), (45, 10), (19 * 60, 10), (20 * 60, 30), (3600, 60), (2 * 3600, 120), (8 * 3600, 300), (24 * 3600, 900),
     (3 * 86400, 3600), (30 * 86400, 43200)],
)
def test_buckets_fit_the_span(span, bucket):
    assert time_bucket_seconds(span) == bucket
    assert span / bucket + 1 <= 120


def test_bucket_never_narrower_than_the_stored_one():
    assert time_bucket_seconds(5, minimum=60) == 60


def labels(start, seconds):
    return [label for _moment, label in time_ticks(start, start + timedelta(seconds=seconds), TOKYO)]


def test_time_ticks_fall_on_round_local_times():
    start = datetime(2026, 1, 1, 1, 0, 7, tzinfo=UTC)  # 10:00:07 in Tokyo
    assert labels(start, 40) == ["10:00:10", "10:00:20", "10:00:30", "10:00:40"]
    assert labels(start, 600) == ["10:02", "10:04", "10:06", "10:08", "10:10"]
    assert labels(start, 7200) == ["10:30", "11:00", "11:30", "12:00"]
    # Crossing midnight in Tokyo: the date is on the first label and where the day changes.
    assert labels(start, 86400) == ["1/1 12:00", "18:00", "1/2 00:00", "06:00"]
    assert labels(start, 5 * 86400) == ["1/2", "1/3", "1/4", "1/5", "1/6"]
    for seconds in (40, 600, 7200, 86400, 5 * 86400):
        assert 2 <= len(labels(start, seconds)) <= 7


def test_a_single_bucket_is_drawn_as_a_line_from_zero():
    at = datetime(2026, 1, 1, 1, 0, 10, tzinfo=UTC)
    chart = line_chart([{"at": at, "sent": 50, "read": 0}], LINES, TOKYO, bucket_seconds=10)
    assert not chart["empty"]
    sent = chart["lines"][0]
    assert len(sent["points"].split()) == 2  # the bucket before (0) and this one: a line, not a dot
    assert "dots" not in sent
    assert sent["total"] == 50
    assert [g["label"] for g in chart["grid"]] == ["0", "10", "20", "30", "40", "50"]
    assert [t["label"] for t in chart["ticks"]] == ["10:00:00", "10:00:10"]
    assert [t["anchor"] for t in chart["ticks"]] == ["middle", "end"]  # the last label is not cut off


def test_buckets_that_counted_nothing_are_zeros_on_an_even_time_axis():
    start = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    series = [{"at": start, "sent": 10}, {"at": start + timedelta(minutes=3), "sent": 30}]
    chart = line_chart(series, LINES, TOKYO, bucket_seconds=60)
    assert chart["points"] == 5  # 09:59 (zero), 10:00, 10:01 and 10:02 (zeros), 10:03
    coordinates = [tuple(map(float, point.split(","))) for point in chart["lines"][0]["points"].split()]
    xs = [x for x, _y in coordinates]
    gaps = {round(b - a, 1) for a, b in zip(xs, xs[1:], strict=False)}
    assert len(gaps) == 1  # evenly spaced in time
    bottom = max(y for _x, y in coordinates)
    assert [y == bottom for _x, y in coordinates] == [True, False, True, True, False]
    assert chart["lines"][0]["total"] == 40


def test_no_points_is_empty():
    assert line_chart([], LINES, TOKYO)["empty"]
