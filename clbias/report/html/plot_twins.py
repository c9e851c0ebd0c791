"""Plot: where the two relevant language versions (twins) of each query land in the ranking."""
from __future__ import annotations

from typing import Sequence

from ..model import ModelScores, Report
from .lanes import Lane, _lane_label, _multi_lanes, _other_lang, _scores
from .svg import (EN_COLOUR, INK, MUTED, NEUTRAL, SAME_COLOUR, SAME_LIGHT, Scale, _axis_x, _circle, _el, _k, _legend,
                  _line, _placeholder, _rect, _svg, _text)


def twin_ranks(max_r: float | None, gap: float | None) -> tuple[float, float] | None:
    """(English twin rank, non-English twin rank) from Max@R and the signed twin rank gap.

    gap = rank(non-English) - rank(English) and Max@R is the deeper of the two, so with one relevant twin pair
    (the Multi scenario's usual case) both ranks follow exactly; with several pairs the result is approximate.
    """
    if max_r is None or gap is None:
        return None
    en = max_r - max(gap, 0.0)
    other = max_r + min(gap, 0.0)
    return max(en, 1.0), max(other, 1.0)


def plot_rank_of_twins(report: Report, model: str) -> str:
    lanes = _multi_lanes(report)
    width, left, right_col, top, lane_h = 1180.0, 120.0, 150.0, 46.0, 40.0
    if not lanes:
        return _placeholder(width, "no Multi scenario in this report")
    if not any((_scores(l.scenario, model) or ModelScores({}, {})).per_query.get("max_r") for l in lanes):
        return _placeholder(width, "per-query values are not in this report (re-run the audit to draw this plot)")
    max_pool = max(float(l.scenario.pool_size) for l in lanes)
    scale = Scale(1.0, max(max_pool, 2.0), left, width - right_col - 16, log=True)
    height = top + lane_h * len(lanes) + 40
    parts = [_legend(left, 16, [("English version", EN_COLOUR), ("query-pool language version (X)", SAME_COLOUR)],
                     "dot"),
             _text(width - right_col + 4, 16, "English version ahead", 11.5, fill=INK, weight=600)]
    parts.append(_axis_x(scale, top - 4, top + lane_h * len(lanes), label="rank in the pool (log scale, 1 = top)"))
    k = _k(report)
    if k < max_pool:
        parts.append(_line(scale(k), top - 4, scale(k), top + lane_h * len(lanes), MUTED, 1.0, "3 3",
                           tip=f"top-{k} cutoff"))
        parts.append(_text(scale(k) + 3, top - 7, f"k={k}", 10, fill=MUTED))
    for i, lane in enumerate(lanes):
        parts.append(_twin_lane(lane, model, scale, top + i * lane_h, lane_h, width, right_col, i))
    return _svg(width, height, "".join(parts), "rank of the two relevant language versions per query")


def _twin_lane(lane: Lane, model: str, scale: Scale, y0: float, h: float, width: float, right_col: float,
               index: int) -> str:
    parts = []
    if index % 2 == 0:
        parts.append(_rect(scale.a - 110, y0, width - scale.a + 110, h, "#f7f9fb"))
    parts.append(_lane_label(lane, scale.a - 10, y0 + h / 2 + 4))
    parts.append(_line(scale(lane.scenario.pool_size), y0 + 3, scale(lane.scenario.pool_size), y0 + h - 3, "#b9c2cc", 1.5,
                       tip=f"pool size {lane.scenario.pool_size}"))
    scores = _scores(lane.scenario, model)
    max_r = scores.per_query.get("max_r", []) if scores else []
    gaps = scores.per_query.get("twin_rank_gap", []) if scores else []
    n = len(max_r)
    x_lang = _other_lang(lane.scenario)
    ahead = behind = 0
    en_ranks: list[float] = []
    x_ranks: list[float] = []
    for q, value in enumerate(max_r):
        y = y0 + 5 + (q + 0.5) / max(n, 1) * (h - 10)
        ranks = twin_ranks(value, gaps[q] if q < len(gaps) else None)
        if ranks is None:
            if value is not None:
                parts.append(_circle(scale(value), y, 2.6, NEUTRAL, tip=f"query {q + 1}: Max@R {value:g} (no twin pair)"))
            continue
        en, other = ranks
        ahead += en < other
        behind += other < en
        en_ranks.append(en)
        x_ranks.append(other)
        gap = gaps[q]
        assert gap is not None  # twin_ranks gives ranks only with a gap
        approx = "" if float(gap).is_integer() else "≈ "
        tip = (f"query {q + 1} ({lane.scenario.query_lang}): English version rank {approx}{en:g}, {x_lang} version rank "
               f"{approx}{other:g}; Max@R {value:g}, twin rank gap {gap:+g}")
        parts.append(_el("g", _line(scale(en), y, scale(other), y, "#8f9aa6", 0.7, opacity=0.35)
                         + _circle(scale(other), y, 2.7, SAME_COLOUR, opacity=0.9)
                         + _circle(scale(en), y, 2.7, EN_COLOUR, opacity=0.9), tip))
    for side_ranks, colour, who in ((x_ranks, SAME_COLOUR, f"{x_lang} version"),
                                    (en_ranks, EN_COLOUR, "English version")):
        if side_ranks:
            med = _median(side_ranks)
            parts.append(_rect(scale(med) - 1.5, y0 + 2, 3, h - 4, colour, rx=1.5,
                               tip=f"{lane.scenario.name}: median rank of the {who} {med:g}"))
    total = ahead + behind
    if total:
        share = ahead / total
        bar_x, bar_w = width - right_col + 4, 90.0
        parts.append(_rect(bar_x, y0 + h / 2 - 5, bar_w, 10, SAME_LIGHT, rx=2))
        parts.append(_rect(bar_x, y0 + h / 2 - 5, bar_w * share, 10, EN_COLOUR, rx=2,
                           tip=f"English version ranked higher in {ahead} of {total} queries"))
        parts.append(_text(bar_x + bar_w + 6, y0 + h / 2 + 4, f"{ahead}/{total}", 11, fill=INK))
    return "".join(parts)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
