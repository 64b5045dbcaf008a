"""Chart geometry for server-rendered SVG: coordinates, grid lines and labels the templates draw.

The pages draw their charts with plain ``<svg>`` elements (no JavaScript chart library); these
functions turn numbers into what the templates need. The dashboard draws ``bar_chart`` (sends per
day) and ``donut_chart`` (+Message against SMS), a campaign's monitor draws ``line_chart`` (sends,
deliveries and reads per bucket of seconds, minutes or hours — ``time_bucket_seconds`` — with round
value and time ticks, ``value_ticks`` and ``time_ticks``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo

BAR_WIDTH, BAR_HEIGHT, BAR_PAD_LEFT, BAR_PAD_BOTTOM, BAR_PAD_TOP = 560, 200, 40, 22, 10
DONUT_R = 52
DONUT_C = 2 * math.pi * DONUT_R


def percent(part, whole) -> float | None:
    """``part`` as a percentage of ``whole`` to one decimal, None when there is no whole."""
    return round(part * 100 / whole, 1) if whole else None


def nice_ceiling(value: int) -> int:
    """A round axis maximum at or above ``value`` whose half is a whole number too."""
    if value <= 4:
        return 4
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def bar_chart(series):
    """Stacked bars (+Message below, SMS above) for [(day, rcs, sms), …]; returns drawing data."""
    peak = max([rcs + sms for _day, rcs, sms in series] + [0])
    top = nice_ceiling(peak)
    plot_w = BAR_WIDTH - BAR_PAD_LEFT - 8
    plot_h = BAR_HEIGHT - BAR_PAD_BOTTOM - BAR_PAD_TOP
    slot = plot_w / max(len(series), 1)
    bar_w = slot * 0.62
    bars = []
    for index, (day, rcs, sms) in enumerate(series):
        x = BAR_PAD_LEFT + index * slot + (slot - bar_w) / 2
        rcs_h = plot_h * rcs / top
        sms_h = plot_h * sms / top
        base = BAR_PAD_TOP + plot_h
        bars.append(
            {
                "x": round(x, 1),
                "w": round(bar_w, 1),
                "rcs_y": round(base - rcs_h, 1),
                "rcs_h": round(rcs_h, 1),
                "sms_y": round(base - rcs_h - sms_h, 1),
                "sms_h": round(sms_h, 1),
                "label_x": round(x + bar_w / 2, 1),
                "day": day,
                "rcs": rcs,
                "sms": sms,
                "total": rcs + sms,
                "show_label": index % 2 == (len(series) - 1) % 2,
            }
        )
    grid = []
    for fraction in (0, 0.5, 1):
        y = BAR_PAD_TOP + plot_h * (1 - fraction)
        grid.append({"y": round(y, 1), "value": int(top * fraction)})
    return {
        "bars": bars,
        "grid": grid,
        "width": BAR_WIDTH,
        "height": BAR_HEIGHT,
        "left": BAR_PAD_LEFT,
        "right": BAR_WIDTH - 8,
        "label_y": BAR_HEIGHT - 6,
        "empty": peak == 0,
    }


def donut_chart(parts):
    """Stroke-dasharray segments of a ring for [(key, value), …]."""
    total = sum(value for _key, value in parts)
    segments = []
    offset = 0.0
    for key, value in parts:
        length = DONUT_C * value / total if total else 0
        segments.append(
            {
                "key": key,
                "value": value,
                "percent": percent(value, total),
                "dash": f"{length:.2f} {DONUT_C - length:.2f}",
                "offset": f"{-offset:.2f}",
            }
        )
        offset += length
    return {"segments": segments, "total": total, "r": DONUT_R, "circumference": f"{DONUT_C:.2f}"}


# Bucket widths the monitor's time axis may use, and the steps its labels may fall on (seconds).
BUCKET_LADDER = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
TICK_LADDER = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def time_bucket_seconds(span_seconds: float, *, minimum: int = 10, max_points: int = 120) -> int:
    """The narrowest bucket from ``BUCKET_LADDER`` (at least ``minimum``) that draws a time span of
    ``span_seconds`` in at most ``max_points`` points: seconds for a short send, then minutes, hours."""
    for width in BUCKET_LADDER:
        if width >= minimum and span_seconds / width + 1 <= max_points:
            return width
    return BUCKET_LADDER[-1]


def value_ticks(peak: float, most: int = 5) -> list[int]:
    """Whole-number axis values from 0: a step of 1, 2 or 5 × 10ⁿ, at most ``most`` steps, the
    last at or above ``peak`` (peak 3 gives 0 1 2 3; 7 gives 0 2 4 6 8; 1,234 gives 0 500 … 1,500)."""
    peak = max(int(math.ceil(peak)), 1)
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if math.ceil(peak / step) <= most:
                return [step * i for i in range(math.ceil(peak / step) + 1)]
        magnitude *= 10


def _local(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz) if moment.utcoffset() is not None else moment


def time_ticks(start: datetime, end: datetime, tz: tzinfo, most: int = 7) -> list[tuple[datetime, str]]:
    """Round times between ``start`` and ``end`` (aware datetimes) to label an axis in ``tz``: every
    10 s, 30 s, 1 min, 5 min, 1 h … whichever gives at most ``most`` labels, on whole multiples of
    the step in local time. Labels: ``HH:MM:SS`` below a minute, ``HH:MM``, with the date (``M/D``)
    on the first label and where the day changes; dates alone for steps of a day or more."""
    span = max((end - start).total_seconds(), 1)
    step = next((s for s in TICK_LADDER if span / s <= most - 1), TICK_LADDER[-1])
    local_start = _local(start, tz)
    offset = local_start.utcoffset().total_seconds() if local_start.utcoffset() is not None else 0
    epoch = start.timestamp()
    first = math.ceil((epoch + offset) / step) * step - offset
    ticks, previous_day = [], None
    moment = first
    while moment <= end.timestamp() + 1e-6:
        local = datetime.fromtimestamp(moment, tz)
        if step >= 86400:
            label = f"{local.month}/{local.day}"
        else:
            label = local.strftime("%H:%M:%S" if step < 60 else "%H:%M")
            if previous_day is not None and local.date() != previous_day or (
                previous_day is None and _local(end, tz).date() != local_start.date()
            ):
                label = f"{local.month}/{local.day} {label}"
        previous_day = local.date()
        ticks.append((local, label))
        moment += step
    return ticks


def line_chart(series: list[dict], lines: list[tuple[str, str, str]], tz: tzinfo, bucket_seconds: int = 60,
               width=960, height=240) -> dict:
    """Polylines in SVG coordinates for points ``{"at": datetime, key: value, …}``, one per bucket of
    ``bucket_seconds`` that counted anything.

    ``lines`` are (key, label, css class) in drawing order; the time axis is labelled in ``tz``. The
    buckets in between that counted nothing are drawn as zeros, and so is the bucket before the
    first, so every series is a line from the start (never a lone dot).
    """
    pad_left, pad_bottom, pad_top, pad_right = 52, 26, 12, 16
    if not series:
        return {"empty": True, "width": width, "height": height}
    step = timedelta(seconds=bucket_seconds)
    by_time = {point["at"]: point for point in series}
    first, last = min(by_time), max(by_time)
    points, moment = [], first - step
    while moment <= last:
        points.append(by_time.get(moment, {"at": moment}))
        moment += step
    peak = max(max(p.get(key, 0) for key, _label, _css in lines) for p in points)
    values = value_ticks(peak)
    top = values[-1]
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    t0, t1 = points[0]["at"], points[-1]["at"]
    duration = (t1 - t0).total_seconds() or 1

    def x(moment):
        return pad_left + plot_w * (moment - t0).total_seconds() / duration

    def y(value):
        return pad_top + plot_h - plot_h * value / top

    drawn = []
    for key, label, css in lines:
        coordinates = [f"{x(p['at']):.1f},{y(p.get(key, 0)):.1f}" for p in points]
        drawn.append({"key": key, "label": label, "css": css, "points": " ".join(coordinates),
                      "total": sum(p.get(key, 0) for p in points)})
    grid = [{"y": f"{y(value):.1f}", "label": f"{value:,}"} for value in values]
    # A label at the right edge ends there rather than being cut off by it.
    ticks = [{"x": f"{x(moment):.1f}", "label": label, "anchor": "end" if x(moment) > width - pad_right - 40 else "middle"}
             for moment, label in time_ticks(t0, t1, tz)]
    return {"empty": False, "width": width, "height": height, "lines": drawn, "grid": grid, "ticks": ticks,
            "left": pad_left, "right": width - pad_right, "top": pad_top, "bottom": height - pad_bottom,
            "bucket_seconds": bucket_seconds, "points": len(points)}
