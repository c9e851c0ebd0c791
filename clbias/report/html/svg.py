"""SVG and text primitives of the HTML report: palette, escaping, elements, scales and axes.

Every string that comes from the report goes through `_e` (html.escape). Underscore names are this
package's internal helpers."""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..display import display
from ..model import Report

from ...langs import ENGLISH

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

# the top-1 decomposition: relevant (dark) / irrelevant (light) x query language / English / third language
TOP1_COLOURS = (("top1_rel_same", SAME_COLOUR), ("top1_rel_en", EN_COLOUR), ("top1_rel_other", OTHER_COLOUR),
                ("top1_irr_same", SAME_LIGHT), ("top1_irr_en", EN_LIGHT), ("top1_irr_other", OTHER_LIGHT))

FONT = '"Inter", "Helvetica Neue", "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", Arial, sans-serif'


def _e(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def _is_en(lang: str) -> bool:
    return lang == ENGLISH or lang.startswith(ENGLISH + "-")


def _fmt(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _cell(key: str, value: float | None, ci: Sequence[float] | None, bound: dict[str, Any] | None = None) -> str:
    """A table cell: the value in the metric's format, the CI below it; a censored metric's bounds, marked."""
    d = display(key)
    if bound:
        ci_text = f'<span class="ci">{_e(d.ci(bound["ci"]))}</span>' if bound.get("ci") else ""
        return (f'<span class="censored" title="bounds: the system ranked too few documents for an exact value">'
                f'{_e(d.bounds(bound))}</span>{ci_text}')
    text = _e(d.value(value))
    if value is not None and ci:
        text += f'<span class="ci">{_e(d.ci(list(ci)))}</span>'
    return text


def _k(report: Report) -> int:
    return int(report.settings.get("k", 10))


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


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


def _placeholder(width: float, message: str) -> str:
    return _svg(width, 60, _rect(0, 0, width, 60, "#fafbfc", rx=6) + _text(width / 2, 35, message, 12.5, "middle"),
                message)
