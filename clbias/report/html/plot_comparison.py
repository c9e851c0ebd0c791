"""Plot: the paired comparison of two models, per scenario and metric."""
from __future__ import annotations

from typing import Any, Sequence

from ..display import at_k, change_class, display
from ..model import Comparison, Report, ScenarioResult
from .svg import (BETTER, EN_COLOUR, INK, MUTED, NEUTRAL, OTHER_LIGHT, WORSE, Scale, _axis_x, _circle, _is_en, _k,
                  _legend, _line, _nice_ticks, _placeholder, _rect, _svg, _text)

COMPARE_METRICS = ("max_r_norm", "complete@{k}", "ndcg@{k}", "eir", "en_exposure@{k}")
CHANGE_COLOURS = {"better": BETTER, "worse": WORSE, "same": NEUTRAL}

def plot_model_comparison(report: Report, base: str, other: str) -> str:
    k = _k(report)
    rows = [(r, c) for r in report.scenarios for c in r.comparisons if c.base == base and c.other == other]
    width, left, top, row_h, gap, wtl_w = 1180.0, 190.0, 58.0, 17.0, 30.0, 170.0
    if not rows:
        return _placeholder(width, "no paired comparison in this report")
    panel_w = (width - left - wtl_w - gap * len(COMPARE_METRICS)) / len(COMPARE_METRICS)
    lines = _comparison_lines(rows)
    bottom = top + row_h * len(lines)
    parts = [_legend(left, 16, [(f"{other} better", BETTER), (f"{other} worse", WORSE), ("no clear difference", NEUTRAL)],
                     "dot"),
             _text(left, 34, f"difference {other} − {base} with paired 95% CI", 11, fill=MUTED)]
    for p, template in enumerate(COMPARE_METRICS):
        key = at_k(template, k)
        x0 = left + p * (panel_w + gap)
        bound = _diff_bound(rows, key)
        scale = Scale(-bound, bound, x0, x0 + panel_w)
        parts.append(_text(x0 + panel_w / 2, top - 8, display(key).title, 12, "middle", INK, 600))
        parts.append(_axis_x(scale, top, bottom, "{:+g}", count=2))
        parts.append(_line(scale(0.0), top, scale(0.0), bottom, "#9aa5b1", 1.2))
        for i, line in enumerate(lines):
            if isinstance(line, tuple):
                parts.append(_diff_mark(line[0], line[1], key, scale, top + i * row_h + row_h / 2))
    wtl_x = width - wtl_w + 8
    parts.append(_text(wtl_x, top - 8, "wins / ties / losses", 11.5, fill=INK, weight=600))
    for i, line in enumerate(lines):
        y = top + i * row_h
        if isinstance(line, str):
            parts.append(_rect(4, y + 1, width - 8, row_h - 2, "#eef2f6", rx=3))
            parts.append(_text(10, y + row_h / 2 + 4, line, 11.5, fill=INK, weight=650))
            continue
        r, comp = line
        parts.append(_text(left - 10, y + row_h / 2 + 4, short_name(r), 11, "end",
                           EN_COLOUR if _is_en(r.query_lang) else INK, tip=r.name))
        parts.append(_wtl_bar(comp.metrics.get("max_r_norm") or {}, wtl_x, y + 4, width - 2, row_h - 8))
    return _svg(width, bottom + 40, "".join(parts), f"paired comparison {other} minus {base}")


def short_name(r: ScenarioResult) -> str:
    """A scenario label short enough for a plot row; the full name goes in the tooltip."""
    pool = "+".join(r.pool_langs) if len(r.pool_langs) <= 4 else f"{len(r.pool_langs)} languages"
    return f"{r.kind} [{pool}] q={r.query_lang}"


def _comparison_lines(rows: list[tuple[ScenarioResult, Comparison]]) -> list[str | tuple[ScenarioResult, Comparison]]:
    lines: list[str | tuple[ScenarioResult, Comparison]] = []
    for r, c in rows:
        if not lines or (isinstance(lines[-1], tuple) and lines[-1][0].kind != r.kind):
            lines.append(r.kind)
        lines.append((r, c))
    return lines


def _diff_bound(rows: Sequence[tuple[ScenarioResult, Comparison]], key: str) -> float:
    bound = 1.0
    for _, c in rows:
        d = c.metrics.get(key) or {}
        for v in [d.get("diff")] + list(d.get("ci") or []):
            if v is not None:
                bound = max(bound, abs(float(v)))
    return float(_nice_ticks(0, bound * 1.05, 2)[-1]) if bound > 1 else 1.0


def _diff_mark(r: ScenarioResult, comp: Comparison, key: str, scale: Scale, y: float) -> str:
    d = comp.metrics.get(key) or {}
    diff = d.get("diff")
    if diff is None:
        return ""
    ci = d.get("ci")
    colour = CHANGE_COLOURS[change_class(key, d)]
    p = d.get("p_value")
    tip = (f"{r.name}, {key}: {comp.other} − {comp.base} = {diff:+.2f}" + (f", 95% CI {ci[0]:+.2f} to {ci[1]:+.2f}" if ci else "")
           + (f", p = {p:.3f}" if p is not None else "")
           + f"; win/tie/loss {d.get('wins', 0)}/{d.get('ties', 0)}/{d.get('losses', 0)}")
    parts = []
    if ci:
        parts.append(_line(scale(ci[0]), y, scale(ci[1]), y, colour, 1.6, tip=tip))
    parts.append(_circle(scale(diff), y, 3.6, colour, tip=tip))
    return "".join(parts)


WTL_LABEL_W = 86.0  # room for the widest label, "9999/9999/9999" at 10.5 px


def _wtl_bar(d: dict[str, Any], x: float, y: float, right: float, h: float) -> str:
    """The bar from `x`, its count label right-aligned at `right` (so a long label never leaves the plot)."""
    w = right - x - WTL_LABEL_W - 6
    wins, ties, losses = int(d.get("wins", 0) or 0), int(d.get("ties", 0) or 0), int(d.get("losses", 0) or 0)
    total = wins + ties + losses
    if not total:
        return ""
    tip = f"wins {wins}, ties {ties}, losses {losses} of {total} queries"
    parts, cursor = [], x
    for count, colour in ((wins, BETTER), (ties, OTHER_LIGHT), (losses, WORSE)):
        seg = w * count / total
        parts.append(_rect(cursor, y, seg, h, colour, tip=tip))
        cursor += seg
    parts.append(_text(right, y + h - 1, f"{wins}/{ties}/{losses}", 10.5, "end", fill=INK, tip=tip))
    return "".join(parts)
