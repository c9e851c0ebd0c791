"""Plot: per-language Multi metrics as bars with their CI whiskers."""
from __future__ import annotations

from typing import Sequence

from ..display import at_k, display
from ..model import Report
from .lanes import Lane, _multi_lanes, _other_lang, _scores
from .svg import EN_COLOUR, INK, SAME_COLOUR, Scale, _axis_x, _k, _legend, _line, _placeholder, _rect, _svg, _text

BAR_METRICS = ("max_r_norm", "complete@{k}", "eir", "ndcg@{k}")


def plot_metric_bars(report: Report, model: str) -> str:
    lanes = _multi_lanes(report)
    width, left, top, row_h, gap = 1180.0, 70.0, 56.0, 26.0, 22.0
    if not lanes:
        return _placeholder(width, "no Multi scenario in this report")
    k = _k(report)
    langs = list(dict.fromkeys(_other_lang(l.scenario) for l in lanes))
    by_lang = {(_other_lang(l.scenario), l.english_query): l for l in lanes}
    panel_w = (width - left - gap * (len(BAR_METRICS) - 1) - 10) / len(BAR_METRICS)
    bottom = top + row_h * len(langs)
    parts = [_legend(left, 16, [("queries in X (pool en + X)", SAME_COLOUR), ("queries in English", EN_COLOUR)]),
             _text(width - 10, 16, "whiskers: 95% bootstrap CI", 11, "end")]
    for p, template in enumerate(BAR_METRICS):
        key = at_k(template, k)
        x0 = left + p * (panel_w + gap)
        lo, hi = _bar_domain(lanes, model, key)
        scale = Scale(lo, hi, x0, x0 + panel_w)
        parts.append(_text(x0, top - 12, display(key).title, 12, fill=INK, weight=600))
        parts.append(_axis_x(scale, top, bottom, count=4))
        for i, lang in enumerate(langs):
            y = top + i * row_h
            if p == 0:
                parts.append(_text(left - 10, y + row_h / 2 + 4, lang, 12, "end", INK, 600))
            for j, english in enumerate((False, True)):
                lane = by_lang.get((lang, english))
                if lane is not None:
                    parts.append(_metric_bar(lane, model, key, scale, y + 3 + j * (row_h - 6) / 2, (row_h - 8) / 2))
    return _svg(width, bottom + 40, "".join(parts), "per-language metrics with confidence intervals")


def _bar_domain(lanes: Sequence[Lane], model: str, key: str) -> tuple[float, float]:
    lo, hi = 0.0, 100.0
    for lane in lanes:
        s = _scores(lane.scenario, model)
        ci = s.ci.get(key) if s else None
        if ci:
            lo, hi = min(lo, ci[0]), max(hi, ci[1])
    return lo, hi


def _metric_bar(lane: Lane, model: str, key: str, scale: Scale, y: float, h: float) -> str:
    s = _scores(lane.scenario, model)
    value = s.metrics.get(key) if s else None
    if value is None:
        return _text(scale.a + 3, y + h - 1, "n/a", 9.5)
    ci = s.ci.get(key) if s else None
    d = display(key)
    tip = f"{lane.scenario.name}: {d.label} {d.value(value, precise=True)}" + (f" (95% CI {d.ci(ci)})" if ci else "")
    colour = EN_COLOUR if lane.english_query else SAME_COLOUR
    zero = scale(0.0)
    parts = [_rect(min(zero, scale(value)), y, abs(scale(value) - zero), h, colour, tip=tip, opacity=0.85)]
    if ci:
        mid = y + h / 2
        parts += [_line(scale(ci[0]), mid, scale(ci[1]), mid, INK, 1.0, tip=tip),
                  _line(scale(ci[0]), mid - 2.5, scale(ci[0]), mid + 2.5, INK, 1.0),
                  _line(scale(ci[1]), mid - 2.5, scale(ci[1]), mid + 2.5, INK, 1.0)]
    return "".join(parts)
