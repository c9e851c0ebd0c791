"""Plot: the language mix of the top results (top-1 decomposition and English exposure@k)."""
from __future__ import annotations

import math
from typing import Sequence

from ..display import display
from ..model import Report
from .lanes import Lane, _lane_label, _multi_lanes, _scores
from .svg import (EN_COLOUR, EN_LIGHT, INK, SAME_COLOUR, TOP1_COLOURS, Scale, _axis_x, _circle, _k, _legend, _line,
                  _placeholder, _rect, _svg, _text)


def plot_topk_mix(report: Report, model: str) -> str:
    lanes = _multi_lanes(report, ("multi", "full"))
    width, left, top, row_h = 1180.0, 120.0, 50.0, 22.0
    if not lanes:
        return _placeholder(width, "no Multi or Full scenario in this report")
    k = _k(report)
    bar = Scale(0.0, 100.0, left, 760.0)
    exposure_hi = _exposure_max(lanes, model, k)
    expo = Scale(0.0, exposure_hi, 830.0, width - 20)
    height = top + row_h * len(lanes) + 46
    parts = [_legend(left, 16, [(display(key).label, colour) for key, colour in TOP1_COLOURS]),
             _text(bar.a, top - 8, "top-1 result of each query (% of queries)", 11.5, fill=INK, weight=600),
             _text(expo.a, top - 8, f"English exposure@{k} (1 = parity with the pool)", 11.5, fill=INK, weight=600)]
    bottom = top + row_h * len(lanes)
    parts.append(_axis_x(bar, top, bottom, "{:g}%"))
    parts.append(_axis_x(expo, top, bottom, "{:g}", count=4))
    parts.append(_line(expo(1.0), top, expo(1.0), bottom, EN_COLOUR, 1.2, "4 3", tip="parity: English share of top-k "
                                                                                    "equals its share of the pool"))
    for i, lane in enumerate(lanes):
        y = top + i * row_h
        if i and lane.scenario.kind != lanes[i - 1].scenario.kind:
            parts.append(_line(left - 110, y, width - 10, y, "#9aa5b1", 1.0))
        parts.append(_lane_label(lane, left - 10, y + row_h / 2 + 4))
        parts.append(_mix_bar(lane, model, bar, y + 4, row_h - 8))
        parts.append(_exposure_dot(lane, model, expo, y + row_h / 2, k))
    return _svg(width, height, "".join(parts), "language mix of the top results")


def _exposure_max(lanes: Sequence[Lane], model: str, k: int) -> float:
    values = [2.0]
    for lane in lanes:
        s = _scores(lane.scenario, model)
        if s is None:
            continue
        ci = s.ci.get(f"en_exposure@{k}")
        values.append(ci[1] if ci else (s.metrics.get(f"en_exposure@{k}") or 0.0))
    return float(math.ceil(max(values) * 2) / 2)


def _mix_bar(lane: Lane, model: str, scale: Scale, y: float, h: float) -> str:
    s = _scores(lane.scenario, model)
    if s is None:
        return ""
    parts = [_rect(scale.a, y, scale.b - scale.a, h, "#f1f3f5", rx=2)]
    x = scale.a
    for key, colour in TOP1_COLOURS:
        label = display(key).label
        value = s.metrics.get(key) or 0.0
        w = scale(value) - scale.a
        if lane.english_query and key.endswith("_same"):  # the query's own language is English here
            colour, label = (EN_COLOUR if key.startswith("top1_rel") else EN_LIGHT), f"{label} (English)"
        if w > 0:
            parts.append(_rect(x, y, w, h, colour, tip=f"{lane.scenario.name}: top-1 {label} {value:.1f}%"))
            if w > 30:
                parts.append(_text(x + w / 2, y + h / 2 + 4, f"{value:.0f}", 10.5, "middle",
                                   "#fff" if "rel" in key else INK))
        x += w
    return "".join(parts)


def _exposure_dot(lane: Lane, model: str, scale: Scale, y: float, k: int) -> str:
    s = _scores(lane.scenario, model)
    if s is None:
        return ""
    value, ci = s.metrics.get(f"en_exposure@{k}"), s.ci.get(f"en_exposure@{k}")
    if value is None:
        return _text(scale.a, y + 4, "n/a", 10.5)
    tip = f"{lane.scenario.name}: English exposure@{k} {value:.2f}" + (f" (95% CI {ci[0]:.2f}–{ci[1]:.2f})" if ci else "")
    parts = []
    if ci:
        parts.append(_line(scale(ci[0]), y, scale(ci[1]), y, "#7d8894", 1.6, tip=tip))
    parts.append(_circle(scale(value), y, 4.2, EN_COLOUR if value > 1 else SAME_COLOUR, tip=tip))
    return "".join(parts)
