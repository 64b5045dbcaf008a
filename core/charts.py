"""Chart geometry for server-rendered SVG: coordinates, grid lines and labels the templates draw.

The pages draw their charts with plain ``<svg>`` elements (no JavaScript chart library); these
functions turn numbers into what the templates need. The dashboard draws ``bar_chart`` (sends per
day) and ``donut_chart`` (+Message against SMS), a campaign's monitor draws ``line_chart`` (sends,
deliveries and reads per minute).
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

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


def line_chart(series: list[dict], lines: list[tuple[str, str, str]], tz: tzinfo, width=960, height=240) -> dict:
    """Polylines in SVG coordinates for points ``{"minute": datetime, key: value, …}``.

    ``lines`` are (key, label, css class) in drawing order; the time axis is labelled in ``tz``.
    """
    pad_left, pad_bottom, pad_top, pad_right = 44, 26, 12, 12
    if not series:
        return {"empty": True, "width": width, "height": height}
    peak = max(max(p.get(key, 0) for key, _label, _css in lines) for p in series) or 1
    magnitude = 10 ** max(0, len(str(int(peak))) - 1)
    top = math.ceil(peak / magnitude) * magnitude
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    count = len(series)

    def x(i):
        return pad_left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(value):
        return pad_top + plot_h - plot_h * value / top

    drawn = []
    for key, label, css in lines:
        coordinates = [(f"{x(i):.1f}", f"{y(p.get(key, 0)):.1f}") for i, p in enumerate(series)]
        drawn.append({"key": key, "label": label, "css": css, "points": " ".join(f"{a},{b}" for a, b in coordinates),
                      # markers when there are few points (a single minute draws no line at all)
                      "dots": coordinates if count <= 30 else [],
                      "total": sum(p.get(key, 0) for p in series)})
    grid = [{"y": f"{y(top * f / 4):.1f}", "label": f"{int(top * f / 4):,}"} for f in range(5)]
    ticks = []
    step = max(1, count // 6)
    for i in range(0, count, step):
        minute: datetime = series[i]["minute"]
        local = minute.astimezone(tz) if minute.utcoffset() is not None else minute
        ticks.append({"x": f"{x(i):.1f}", "label": local.strftime("%H:%M")})
    return {"empty": False, "width": width, "height": height, "lines": drawn, "grid": grid, "ticks": ticks,
            "left": pad_left, "right": width - pad_right, "bottom": height - pad_bottom}
