"""Self-contained HTML rendering of a Report: inline CSS and inline SVG plots, no JavaScript, no external URLs.

Every string that comes from the report (model names, corpus metadata, notes, ...) goes through `_e`
(html.escape). The plots are drawn by the small SVG helpers below; each sits in a <figure data-plot="...">.

    to_html(report) -> str        write_html(report, path)
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..io import write_text_atomic
from ..metrics.registry import Direction, get_metric
from .model import Comparison, LanguageGap, ModelInfo, ModelScores, Report, ScenarioResult

ENGLISH = "en"

# Muted palette; English is always amber, the query's own language slate blue, third languages grey.
EN_COLOUR = "#c8741a"
EN_LIGHT = "#efc48f"
SAME_COLOUR = "#3d6b99"
SAME_LIGHT = "#a9c2db"
OTHER_COLOUR = "#6f7a87"
OTHER_LIGHT = "#cdd2d9"
BETTER = "#2a8c7a"
WORSE = "#b8483e"
NEUTRAL = "#8a94a0"
INK = "#1f2933"
MUTED = "#66727f"
GRID = "#e3e7ec"

FONT = '"Inter", "Helvetica Neue", "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", Arial, sans-serif'

TABLE_COLUMNS = (("max_r", "Max@R ↓"), ("max_r_norm", "Max@R_norm"), ("complete@{k}", "Complete@{k}"),
                 ("ndcg@{k}", "nDCG@{k}"), ("mrr@{k}", "MRR@{k}"), ("eir", "EIR % ↓"), ("en_exposure@{k}", "EN exp@{k}"))
TOP1 = (("top1_rel_same", "rel · same", SAME_COLOUR), ("top1_rel_en", "rel · en", EN_COLOUR),
        ("top1_rel_other", "rel · other", OTHER_COLOUR), ("top1_irr_same", "irr · same", SAME_LIGHT),
        ("top1_irr_en", "irr · en", EN_LIGHT), ("top1_irr_other", "irr · other", OTHER_LIGHT))
BAR_METRICS = (("max_r_norm", "Max@R_norm"), ("complete@{k}", "Complete@{k}"), ("eir", "EIR % ↓"), ("ndcg@{k}", "nDCG@{k}"))
COMPARE_METRICS = (("max_r_norm", "Max@R_norm"), ("complete@{k}", "Complete@{k}"), ("ndcg@{k}", "nDCG@{k}"),
                   ("eir", "EIR ↓"))

CSS = f"""
:root {{ --ink: {INK}; --muted: {MUTED}; --grid: {GRID}; --en: {EN_COLOUR}; --same: {SAME_COLOUR}; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: #f4f6f8; color: var(--ink); font: 14px/1.45 {FONT};
       -webkit-font-smoothing: antialiased; }}
main {{ max-width: 1260px; margin: 0 auto; padding: 28px 28px 60px; }}
h1 {{ font-size: 24px; font-weight: 650; margin: 0 0 4px; letter-spacing: -0.01em; }}
h2 {{ font-size: 18px; font-weight: 620; margin: 34px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--grid); }}
h3 {{ font-size: 15px; font-weight: 600; margin: 18px 0 8px; }}
p.lede {{ color: var(--muted); margin: 0 0 18px; }}
.card {{ background: #fff; border: 1px solid var(--grid); border-radius: 8px; padding: 14px 18px; margin: 0 0 14px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; }}
.grid .card {{ margin: 0; }}
.card h3 {{ margin-top: 0; font-size: 13px; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }}
dt {{ color: var(--muted); }}
dd {{ margin: 0; overflow-wrap: anywhere; }}
code, .mono {{ font-family: "JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }}
.sha {{ font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11.5px; color: #3a4653;
        background: #f1f3f5; padding: 1px 5px; border-radius: 4px; overflow-wrap: anywhere; }}
.en {{ color: var(--en); font-weight: 600; }}
.tablewrap {{ overflow-x: auto; background: #fff; border: 1px solid var(--grid); border-radius: 8px; margin: 0 0 14px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 12.5px; font-variant-numeric: tabular-nums; }}
caption {{ text-align: left; padding: 10px 12px 6px; font-weight: 600; color: var(--ink); }}
th {{ text-align: right; font-weight: 600; color: var(--muted); padding: 6px 10px; border-bottom: 1px solid var(--grid);
      background: #fafbfc; white-space: nowrap; }}
td {{ text-align: right; padding: 5px 10px; border-bottom: 1px solid #eef1f4; vertical-align: top; white-space: nowrap; }}
th.l, td.l {{ text-align: left; }}
tr.first td {{ border-top: 1px solid #d9dee4; }}
tr.delta td {{ background: #fbfaf6; }}
tr.qen td.lang {{ color: var(--en); font-weight: 600; }}
.ci {{ display: block; color: #8a95a1; font-size: 11px; }}
.better {{ color: {BETTER}; font-weight: 600; }}
.worse {{ color: {WORSE}; font-weight: 600; }}
.wtl {{ display: block; color: #8a95a1; font-size: 11px; }}
figure {{ background: #fff; border: 1px solid var(--grid); border-radius: 8px; margin: 0 0 18px; padding: 14px 16px 10px; }}
figure svg {{ display: block; max-width: 100%; height: auto; font-family: {FONT}; }}
figcaption {{ color: var(--muted); font-size: 12.5px; margin-top: 8px; max-width: 1100px; }}
figcaption b {{ color: var(--ink); }}
.note {{ background: #fff8ec; border: 1px solid #f0dcb8; border-left: 4px solid var(--en); border-radius: 6px;
         padding: 8px 12px; margin: 6px 0; }}
.muted {{ color: var(--muted); }}
details > summary {{ cursor: pointer; font-weight: 600; margin: 8px 0; }}
dd details > summary {{ font-weight: 400; font-size: 12px; margin: 2px 0; }}
footer {{ color: var(--muted); font-size: 12px; margin-top: 30px; }}
"""


# ---------------------------------------------------------------- small text helpers


def _e(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def _is_en(lang: str) -> bool:
    return lang == ENGLISH or lang.startswith(ENGLISH + "-")


def _fmt(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _cell(value: float | None, ci: Sequence[float] | None, digits: int = 1) -> str:
    text = _fmt(value, digits)
    if value is not None and ci:
        text += f'<span class="ci">{_fmt(ci[0], digits)} – {_fmt(ci[1], digits)}</span>'
    return text


def _k(report: Report) -> int:
    return int(report.settings.get("k", 10))


def _key(template: str, k: int) -> str:
    return template.format(k=k)


def _digits(key: str) -> int:
    return 2 if key.startswith("en_exposure") else 1


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------- SVG primitives


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _attrs(attrs: dict[str, Any]) -> str:
    parts = []
    for name, value in attrs.items():
        if value is None:
            continue
        name = name.rstrip("_").replace("_", "-")
        parts.append(f'{name}="{_n(value) if isinstance(value, float) else _e(value)}"')
    return " ".join(parts)


def _el(tag: str, content: str = "", tip: str | None = None, **attrs: Any) -> str:
    inner = (f"<title>{_e(tip)}</title>" if tip else "") + content
    return f"<{tag} {_attrs(attrs)}>{inner}</{tag}>" if inner else f"<{tag} {_attrs(attrs)}/>"


def _text(x: float, y: float, label: str, size: float = 11, anchor: str = "start", fill: str = MUTED,
          weight: int | None = None, tip: str | None = None) -> str:
    return _el("text", _e(label), tip, x=float(x), y=float(y), font_size=float(size), text_anchor=anchor, fill=fill,
               font_weight=weight)


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, width: float = 1.0,
          dash: str | None = None, tip: str | None = None, opacity: float | None = None) -> str:
    return _el("line", "", tip, x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), stroke=stroke,
               stroke_width=float(width), stroke_dasharray=dash, stroke_opacity=opacity)


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str | None = None, rx: float = 0.0,
          opacity: float | None = None) -> str:
    return _el("rect", "", tip, x=float(x), y=float(y), width=float(max(w, 0.0)), height=float(max(h, 0.0)),
               fill=fill, rx=float(rx) if rx else None, fill_opacity=opacity)


def _circle(x: float, y: float, r: float, fill: str, tip: str | None = None, stroke: str | None = "#fff",
            opacity: float | None = None) -> str:
    return _el("circle", "", tip, cx=float(x), cy=float(y), r=float(r), fill=fill, stroke=stroke,
               stroke_width=0.8 if stroke else None, fill_opacity=opacity)


def _svg(width: float, height: float, body: str, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" '
            f'height="{_n(height)}" role="img" aria-label="{_e(label)}">{body}</svg>')


def _legend(x: float, y: float, items: Sequence[tuple[str, str]], shape: str = "rect") -> str:
    parts = []
    for label, colour in items:
        mark = _circle(x + 5, y - 4, 4.5, colour, stroke=None) if shape == "dot" else _rect(x, y - 9, 11, 11, colour, rx=2)
        parts.append(mark + _text(x + 16, y, label, 11.5, fill=INK))
        x += 26 + 6.6 * len(label)
    return "".join(parts)


def _figure(kind: str, svg: str, caption: str, model: str | None = None) -> str:
    attr = f' data-model="{_e(model)}"' if model is not None else ""
    return f'<figure data-plot="{_e(kind)}"{attr}>{svg}<figcaption>{caption}</figcaption></figure>'


# ---------------------------------------------------------------- scales


@dataclass(frozen=True)
class Scale:
    """Map a domain [lo, hi] onto pixels [a, b], linearly or on log10."""

    lo: float
    hi: float
    a: float
    b: float
    log: bool = False

    def _t(self, v: float) -> float:
        return math.log10(max(v, 1e-12)) if self.log else v

    def __call__(self, v: float) -> float:
        lo, hi = self._t(self.lo), self._t(self.hi)
        if hi == lo:
            return self.a
        f = (self._t(min(max(v, self.lo), self.hi)) - lo) / (hi - lo)
        return self.a + f * (self.b - self.a)

    def ticks(self, count: int = 5) -> list[float]:
        if self.log:
            out = [m * 10 ** e for e in range(0, int(math.log10(max(self.hi, 1))) + 2) for m in (1, 2, 5)]
            return [t for t in out if self.lo <= t <= self.hi]
        return _nice_ticks(self.lo, self.hi, count)


def _nice_ticks(lo: float, hi: float, count: int) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _axis_x(scale: Scale, y_top: float, y_bottom: float, fmt: str = "{:g}", label: str | None = None,
            count: int = 5) -> str:
    parts = []
    for t in scale.ticks(count):
        x = scale(t)
        parts.append(_line(x, y_top, x, y_bottom, GRID))
        parts.append(_text(x, y_bottom + 13, fmt.format(t), 10.5, "middle"))
    if label:
        parts.append(_text((scale.a + scale.b) / 2, y_bottom + 28, label, 11, "middle", INK))
    return "".join(parts)


# ---------------------------------------------------------------- report structure helpers


@dataclass(frozen=True)
class Lane:
    """One scenario as a row of a plot."""

    label: str
    scenario: ScenarioResult
    english_query: bool


def _other_lang(r: ScenarioResult) -> str:
    return next((l for l in r.pool_langs if not _is_en(l)), r.query_lang)


def _multi_lanes(report: Report, kinds: Iterable[str] = ("multi",)) -> list[Lane]:
    """Multi scenarios ordered by pool language, the X-query lane before the English-query lane."""
    wanted = tuple(kinds)
    chosen = [r for r in report.scenarios if r.kind in wanted]
    lanes = []
    for r in sorted(chosen, key=lambda r: (wanted.index(r.kind), _other_lang(r) if r.kind == "multi" else "",
                                           _is_en(r.query_lang), r.query_lang)):
        prefix = f"{_other_lang(r)}" if r.kind == "multi" else r.kind
        lanes.append(Lane(f"{prefix} · q={r.query_lang}", r, _is_en(r.query_lang)))
    return lanes


def _scores(r: ScenarioResult, model: str) -> ModelScores | None:
    return r.by_model.get(model)


def _lane_label(lane: Lane, x: float, y: float, size: float = 11.5) -> str:
    colour = EN_COLOUR if lane.english_query else INK
    return _text(x, y, lane.label, size, "end", colour, 600 if lane.english_query else None, tip=lane.scenario.name)


def _placeholder(width: float, message: str) -> str:
    return _svg(width, 60, _rect(0, 0, width, 60, "#fafbfc", rx=6) + _text(width / 2, 35, message, 12.5, "middle"),
                message)


# ---------------------------------------------------------------- plot a: rank of twins


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
        approx = "" if float(gaps[q]).is_integer() else "≈ "
        tip = (f"query {q + 1} ({lane.scenario.query_lang}): English version rank {approx}{en:g}, {x_lang} version rank "
               f"{approx}{other:g}; Max@R {value:g}, twin rank gap {gaps[q]:+g}")
        parts.append(_el("g", _line(scale(en), y, scale(other), y, "#8f9aa6", 0.7, opacity=0.35)
                         + _circle(scale(other), y, 2.7, SAME_COLOUR, opacity=0.9)
                         + _circle(scale(en), y, 2.7, EN_COLOUR, opacity=0.9), tip))
    for ranks, colour, who in ((x_ranks, SAME_COLOUR, f"{x_lang} version"), (en_ranks, EN_COLOUR, "English version")):
        if ranks:
            med = _median(ranks)
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


# ---------------------------------------------------------------- plot b: top-k language mix


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
    parts = [_legend(left, 16, [(label, colour) for _, label, colour in TOP1]),
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
    for key, label, colour in TOP1:
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


# ---------------------------------------------------------------- plot c: metric bars with CI whiskers


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
    for p, (template, title) in enumerate(BAR_METRICS):
        key = _key(template, k)
        x0 = left + p * (panel_w + gap)
        lo, hi = _bar_domain(lanes, model, key)
        scale = Scale(lo, hi, x0, x0 + panel_w)
        parts.append(_text(x0, top - 12, _key(title, k), 12, fill=INK, weight=600))
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
    tip = f"{lane.scenario.name}: {key} {value:.1f}" + (f" (95% CI {ci[0]:.1f}–{ci[1]:.1f})" if ci else "")
    colour = EN_COLOUR if lane.english_query else SAME_COLOUR
    zero = scale(0.0)
    parts = [_rect(min(zero, scale(value)), y, abs(scale(value) - zero), h, colour, tip=tip, opacity=0.85)]
    if ci:
        mid = y + h / 2
        parts += [_line(scale(ci[0]), mid, scale(ci[1]), mid, INK, 1.0, tip=tip),
                  _line(scale(ci[0]), mid - 2.5, scale(ci[0]), mid + 2.5, INK, 1.0),
                  _line(scale(ci[1]), mid - 2.5, scale(ci[1]), mid + 2.5, INK, 1.0)]
    return "".join(parts)


# ---------------------------------------------------------------- plot d: model comparison


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
    for p, (template, title) in enumerate(COMPARE_METRICS):
        key = _key(template, k)
        x0 = left + p * (panel_w + gap)
        bound = _diff_bound(rows, key)
        scale = Scale(-bound, bound, x0, x0 + panel_w)
        parts.append(_text(x0 + panel_w / 2, top - 8, _key(title, k), 12, "middle", INK, 600))
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
        parts.append(_wtl_bar(comp.metrics.get("max_r_norm") or {}, wtl_x, y + 4, wtl_w - 70, row_h - 8))
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


def _improvement_sign(key: str, diff: float) -> float:
    try:
        direction = get_metric(key).direction
    except Exception:  # an unknown metric key: treat higher as better
        direction = Direction.HIGHER
    return -diff if direction is Direction.LOWER else diff


def _diff_mark(r: ScenarioResult, comp: Comparison, key: str, scale: Scale, y: float) -> str:
    d = comp.metrics.get(key) or {}
    diff = d.get("diff")
    if diff is None:
        return ""
    ci = d.get("ci")
    significant = bool(ci) and (ci[0] > 0 or ci[1] < 0)
    colour = NEUTRAL if not significant else (BETTER if _improvement_sign(key, diff) > 0 else WORSE)
    p = d.get("p_value")
    tip = (f"{r.name}, {key}: {comp.other} − {comp.base} = {diff:+.2f}" + (f", 95% CI {ci[0]:+.2f} to {ci[1]:+.2f}" if ci else "")
           + (f", p = {p:.3f}" if p is not None else "")
           + f"; win/tie/loss {d.get('wins', 0)}/{d.get('ties', 0)}/{d.get('losses', 0)}")
    parts = []
    if ci:
        parts.append(_line(scale(ci[0]), y, scale(ci[1]), y, colour, 1.6, tip=tip))
    parts.append(_circle(scale(diff), y, 3.6, colour, tip=tip))
    return "".join(parts)


def _wtl_bar(d: dict[str, Any], x: float, y: float, w: float, h: float) -> str:
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
    parts.append(_text(x + w + 6, y + h - 1, f"{wins}/{ties}/{losses}", 10.5, fill=INK))
    return "".join(parts)


# ---------------------------------------------------------------- header


def _dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are HTML already (escape before calling)."""
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items if v not in (None, "")) + "</dl>"


def _model_card(m: ModelInfo) -> str:
    source = m.source.get("description") or m.source.get("model") or m.source.get("note")
    items = [("sha256", f'<span class="sha">{_e(m.sha256)}</span>'), ("ONNX file", f"<code>{_e(m.onnx)}</code>"),
             ("pooling", _e(m.pooling + (" + L2 normalisation" if m.normalize else ""))),
             ("query prefix", f"<code>{_e(repr(m.prefixes.get('query', '')))}</code>"),
             ("passage prefix", f"<code>{_e(repr(m.prefixes.get('passage', '')))}</code>"),
             ("max length", _e(m.max_length)), ("dimension", _e(m.dim)), ("source", _e(source) if source else "")]
    if m.quantization:
        items.append(("quantisation", _quantization_html(m.quantization)))
    if m.shift:
        items.append(("shift", f"<code>{_e(_json(m.shift))}</code>"))
    return f'<div class="card"><h3>model</h3><div style="font-weight:620;margin-bottom:6px">{_e(m.name)}</div>{_dl(items)}</div>'


def _quantization_html(q: dict[str, Any]) -> str:
    """One readable line (type, drift against the fp32 graph) and the full record folded away."""
    parts = [str(q[k]) for k in ("weight_type", "method") if q.get(k)][:1]
    if q.get("per_channel") is not None:
        parts.append("per-channel" if q["per_channel"] else "per-tensor")
    if isinstance(q.get("min_cosine"), (int, float)):
        parts.append(f"min cosine vs {q.get('drift_vs', 'fp32')} {q['min_cosine']:.4f}")
    if isinstance(q.get("median_cosine"), (int, float)):
        parts.append(f"median {q['median_cosine']:.4f}")
    return (_e(", ".join(parts) or "yes") + f'<details><summary class="muted">full record</summary>'
            f'<code>{_e(_json(q))}</code></details>')


def _langs_html(langs: Iterable[str]) -> str:
    return ", ".join(f'<span class="en">{_e(l)}</span>' if _is_en(l) else _e(l) for l in langs)


def _corpus_card(report: Report) -> str:
    c = report.corpus
    source = c.get("source")
    if isinstance(source, dict):
        source = " ".join(str(source[k]) for k in ("package", "version") if source.get(k)) or _json(source)
    items = [("name", f"<b>{_e(c.get('name'))}</b>"), ("path", f"<code>{_e(c.get('path'))}</code>"),
             ("documents", f"{_e(c.get('n_docs'))} in {_langs_html(c.get('doc_langs', []))}"),
             ("queries", f"{_e(c.get('n_queries'))} in {_langs_html(c.get('query_langs', []))}"),
             ("split", _e(c.get("split"))), ("parallel", _e(c.get("parallel") or "not stated")),
             ("query derivation", _e(c.get("query_derivation"))), ("source", _e(source)), ("licence", _e(c.get("license")))]
    return f'<div class="card"><h3>corpus</h3>{_dl(items)}</div>'


def _run_card(report: Report) -> str:
    idx, s, env = report.index, report.settings, report.environment
    recall = idx.get("recall_vs_exact")
    items = [("index", f"{_e(idx.get('kind'))} <code>{_e(_json(idx.get('params')))}</code>"),
             (f"recall@{_k(report)} vs exact", _e(f"{recall:.3f}") if isinstance(recall, (int, float)) else "exact search"),
             ("cutoff k / depth", f"{_e(s.get('k'))} / {_e(s.get('depth'))}"),
             ("bootstrap", f"{_e(s.get('bootstrap'))} resamples, seed {_e(s.get('seed'))}, "
                           f"{_e(round(100 * float(s.get('ci_level', 0.95))))}% CI"),
             ("translations relevant", _e(s.get("expand_translations"))),
             ("threads", _e(env.get("threads"))),
             ("versions", _e(", ".join(f"{k} {v}" for k, v in env.items()
                                       if k not in ("threads", "platform", "cpu_count") and v is not None))),
             ("platform", _e(env.get("platform")))]
    return f'<div class="card"><h3>index, settings, environment</h3>{_dl(items)}</div>'


def _header(report: Report) -> str:
    names = ", ".join(m.name for m in report.models)
    cards = "".join(_model_card(m) for m in report.models) + _corpus_card(report) + _run_card(report)
    return (f"<h1>clbias audit · {_e(report.corpus.get('name'))}</h1>"
            f'<p class="lede">English-bias audit of {_e(names)}. <span class="en">English</span> is drawn in amber '
            f"throughout; every aggregate carries a seeded 95% bootstrap confidence interval over queries.</p>"
            f'<div class="grid">{cards}</div>')


# ---------------------------------------------------------------- tables


def _table(caption: str, head: Sequence[tuple[str, bool]], rows: Iterable[str], data: str) -> str:
    ths = "".join(f'<th class="l">{_e(h)}</th>' if left else f"<th>{_e(h)}</th>" for h, left in head)
    return (f'<div class="tablewrap"><table data-table="{_e(data)}"><caption>{_e(caption)}</caption>'
            f"<thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def scenario_table(report: Report, kind: str, results: Sequence[ScenarioResult]) -> str:
    k = _k(report)
    many = len(report.models) > 1
    head = [("pool", True), ("query", True), ("n", False)] + ([("model", True)] if many else [])
    head += [(_key(title, k), False) for _, title in TABLE_COLUMNS]
    rows = []
    for r in results:
        for i, (name, s) in enumerate(r.by_model.items()):
            lead = (f'<td class="l">{_langs_html(r.pool_langs)}</td><td class="l lang">{_e(r.query_lang)}</td>'
                    f"<td>{_e(r.n_queries)}</td>") if i == 0 else '<td></td><td></td><td></td>'
            cells = "".join(f"<td>{_cell(s.metrics.get(_key(t, k)), s.ci.get(_key(t, k)), _digits(t))}</td>"
                            for t, _ in TABLE_COLUMNS)
            cls = " ".join(c for c in ("first" if i == 0 else "", "qen" if _is_en(r.query_lang) else "") if c)
            rows.append(f'<tr class="{cls}">{lead}' + (f'<td class="l">{_e(name)}</td>' if many else "") + cells + "</tr>")
        for comp in r.comparisons:
            cells = "".join(f"<td>{_delta_cell(_key(t, k), comp.metrics.get(_key(t, k)) or {}, _digits(t))}</td>"
                            for t, _ in TABLE_COLUMNS)
            rows.append(f'<tr class="delta"><td></td><td></td><td></td><td class="l">Δ {_e(comp.other)} − '
                        f"{_e(comp.base)}</td>{cells}</tr>")
    return _table(f"{kind} scenarios", head, rows, f"scenarios-{kind}")


def _delta_cell(key: str, d: dict[str, Any], digits: int) -> str:
    if d.get("diff") is None:
        return "–"
    p = d.get("p_value")
    significant = p is not None and p < 0.05
    value = _fmt(d["diff"], digits, sign=True)
    cls = "better" if _improvement_sign(key, float(d["diff"])) > 0 else "worse"
    text = f'<span class="{cls}">{value}*</span>' if significant else value
    ci = d.get("ci")
    if ci:
        text += f'<span class="ci">{_fmt(ci[0], digits, True)} – {_fmt(ci[1], digits, True)}</span>'
    return text + f'<span class="wtl">w/t/l {_e(d.get("wins", 0))}/{_e(d.get("ties", 0))}/{_e(d.get("losses", 0))}</span>'


def gap_table(report: Report) -> str:
    if not report.gaps:
        return ""
    k = _k(report)
    keys = [("max_r_norm", "Max@R_norm"), (f"complete@{k}", f"Complete@{k}"), (f"ndcg@{k}", f"nDCG@{k}"),
            (f"mrr@{k}", f"MRR@{k}")]
    head = [("scenario", True), ("X", True), ("model", True), ("paired", True)] + [(t, False) for _, t in keys]
    rows = [_gap_row(g, keys) for g in report.gaps]
    return _table("language gap: metric(English queries) − metric(X queries), points (> 0: English queries do better)",
                  head, rows, "gaps")


def _gap_row(g: LanguageGap, keys: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<td>{_cell(g.metrics.get(key), g.ci.get(key))}</td>" for key, _ in keys)
    return (f'<tr><td class="l">{_e(g.kind)} [{_langs_html(g.pool_langs)}]</td><td class="l">{_e(g.lang)}</td>'
            f'<td class="l">{_e(g.model)}</td><td class="l">{"by question" if g.paired else "unpaired"}</td>{cells}</tr>')


def top1_table(report: Report) -> str:
    chosen = [r for r in report.scenarios if r.kind in ("multi", "full")]
    if not chosen:
        return ""
    head = [("scenario", True), ("model", True)] + [(label, False) for _, label, _ in TOP1]
    rows = []
    for r in chosen:
        for name, s in r.by_model.items():
            cells = "".join(f"<td>{_cell(s.metrics.get(key), s.ci.get(key))}</td>" for key, _, _ in TOP1)
            cls = "qen" if _is_en(r.query_lang) else ""
            rows.append(f'<tr class="{cls}"><td class="l lang">{_e(r.name)}</td><td class="l">{_e(name)}</td>{cells}</tr>')
    return _table("top-1 decomposition (% of queries): relevant / irrelevant × query language / English / other", head,
                  rows, "top1")


def truncation_table(report: Report) -> str:
    rows = []
    for model, kinds in report.truncation.items():
        for kind, langs in kinds.items():
            if kind.endswith("_ids"):  # lang -> first truncated ids, not counts
                continue
            cut = {l: n for l, n in langs.items() if n}
            text = ", ".join(f"{_langs_html([l])} {_e(n)}" for l, n in cut.items()) if cut else '<span class="muted">none</span>'
            rows.append(f'<tr><td class="l">{_e(model)}</td><td class="l">{_e(kind)}</td><td class="l" '
                        f'style="white-space:normal">{text}</td><td>{_e(sum(cut.values()))}</td></tr>')
    if not rows:
        return ""
    return _table("texts truncated at the model's max length (count by language)",
                  [("model", True), ("texts", True), ("by language", True), ("total", False)], rows, "truncation")


def neighbour_table(report: Report) -> str:
    n = report.neighbours or {}
    if not n:
        return ""
    langs = list(n.get("langs", []))
    head = [("doc lang", True)] + [(l, False) for l in langs] + [("EN exposure", False)]
    rows = [f'<tr><td class="l">{_langs_html([lang])}</td>'
            + "".join(f"<td>{_fmt(row.get(l, 0.0))}</td>" for l in langs)
            + f"<td>{_fmt(n.get('en_exposure', {}).get(lang), 2)}</td></tr>" for lang, row in n.get("mix", {}).items()]
    return _table(f"label-free view: language of the top-{n.get('k')} neighbours of each document (% of neighbours)",
                  head, rows, "neighbours")


def notes_html(report: Report) -> str:
    return "".join(f'<div class="note">{_e(note)}</div>' for note in report.notes)


# ---------------------------------------------------------------- plots section


def _plots(report: Report) -> str:
    k = _k(report)
    out = []
    names = [m.name for m in report.models]
    for name in names:
        if len(names) > 1:
            out.append(f"<h3>model {_e(name)}</h3>")
        out.append(_figure("rank-of-twins", plot_rank_of_twins(report, name), (
            "<b>Where the two relevant language versions land.</b> Multi scenarios (pool = English + X documents): "
            "one row of dots per query; the <span class=\"en\">amber</span> dot is the rank of the relevant English "
            "version, the blue dot the rank of the relevant version in X, joined by a line. Ranks are derived from "
            "each query's Max@R and twin rank gap: exact with one relevant twin pair per query, approximate (≈ in "
            "the tooltip) with several. The grey tick marks the pool size, the dashed line the cutoff k; the bar on "
            "the right counts the queries whose English version ranks higher; the tall ticks are the median ranks."), name))
        out.append(_figure("topk-language-mix", plot_topk_mix(report, name), (
            "<b>Language mix of the results.</b> Left: what each query's top-1 result is — relevant or irrelevant, "
            f"in the query's language (blue), in <span class=\"en\">English</span> (amber) or in a third language "
            "(grey); for English queries the query's language is English, so those segments are amber too. "
            f"Right: English exposure@{k}, the English share of the top {k} divided by its share of the "
            "pool, with its 95% CI; right of the dashed parity line English is over-exposed."), name))
        out.append(_figure("metric-bars", plot_metric_bars(report, name), (
            "<b>Per-language metrics, Multi scenario.</b> For each language X, the pool holds the English and X "
            "documents; blue bars are X queries, <span class=\"en\">amber</span> bars English queries (EIR applies "
            "to non-English queries only). Max@R_norm: 100 = every relevant version at the top; Complete@k: % of "
            "queries with both versions in the top k; EIR: % of X queries where an irrelevant English document "
            "outranks the best relevant X document (lower is better)."), name))
    for base in names[:1]:
        for other in names[1:]:
            out.append(_figure("model-comparison", plot_model_comparison(report, base, other), (
                f"<b>{_e(other)} versus {_e(base)}.</b> Per scenario, the mean per-query difference "
                f"({_e(other)} − {_e(base)}) with its paired 95% bootstrap CI; green when the CI excludes 0 in "
                f"{_e(other)}'s favour, red against it (EIR: lower is better). Right: per-query wins, ties and "
                "losses on Max@R_norm."), f"{other} vs {base}"))
    return "".join(out)


# ---------------------------------------------------------------- page


def to_html(report: Report) -> str:
    """The whole report as one self-contained HTML page (no scripts, no external resources)."""
    kinds: dict[str, list[ScenarioResult]] = {}
    for r in report.scenarios:
        kinds.setdefault(r.kind, []).append(r)
    tables = "".join(f"<details open><summary>{_e(kind)} · {len(results)} scenarios</summary>"
                     f"{scenario_table(report, kind, results)}</details>" for kind, results in kinds.items())
    body = [_header(report)]
    if report.notes:
        body.append(f"<h2>Notes</h2>{notes_html(report)}")
    body.append(f"<h2>Plots</h2>{_plots(report)}")
    body.append("<h2>Scenarios</h2><p class=\"lede\">Each cell: mean over queries and its 95% CI. "
                "Δ rows: paired difference to the first model, * = sign-flip p &lt; 0.05 (green: better, red: worse), "
                "with per-query wins/ties/losses. Rows with English queries are in amber.</p>" + (tables or '<p class="muted">no scenario</p>'))
    extra = gap_table(report) + top1_table(report)
    if extra:
        body.append(f"<h2>Language gap and top-1 decomposition</h2>{extra}")
    truncation = truncation_table(report) or '<p class="muted">no truncation recorded</p>'
    body.append(f"<h2>Truncation</h2>{truncation}")
    if report.neighbours:
        body.append(f"<h2>Label-free view</h2>{neighbour_table(report)}")
    timings = ", ".join(f"{_e(k)} {_e(v)}" for k, v in report.timings.items())
    body.append(f"<footer>schema {_e(report.schema)} · clbias {_e(report.environment.get('clbias'))}"
                + (f" · timings: {timings}" if timings else "") + "</footer>")
    title = f"clbias audit · {report.corpus.get('name')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n")


def write_html(report: Report, path: str | Path) -> None:
    write_text_atomic(path, to_html(report))


__all__ = ["to_html", "write_html", "twin_ranks"]
