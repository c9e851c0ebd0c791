"""Plot: the language matrix as an annotated heatmap (query language x pool language), with the mean
cross-lingual penalty per row and per column in the margins."""
from __future__ import annotations

from ..display import display
from ..matrix import LanguageMatrix
from .svg import EN_COLOUR, INK, MUTED, _el, _placeholder, _rect, _svg, _text

LOW = (244, 246, 248)  # colour of a score of 0
HIGH = (36, 79, 122)  # colour of a score of 100


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    t = min(max(t, 0.0), 1.0)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))


def heat_colour(value: float) -> str:
    return _mix(LOW, HIGH, value / 100.0)


def penalty_colour(value: float, bound: float = 30.0) -> str:
    target = (42, 140, 122) if value > 0 else (184, 72, 62)
    return _mix((250, 250, 250), target, abs(value) / bound)


def plot_language_matrix(m: LanguageMatrix) -> str:
    n = len(m.langs)
    if not n or not any(v is not None for v in m.cells.values()):
        return _placeholder(1180.0, "no matrix cell has a value")
    cell = max(34.0, min(58.0, 760.0 / n))
    left, top = 70.0, 64.0
    grid_w = cell * n
    width = left + grid_w + 16 + cell * 1.4 + 20
    height = top + grid_w + 8 + cell * 0.8 + 40
    d = display(m.metric)
    parts = [_text(left, 18, f"{d.label}: rows = query language X, columns = pool language Y (one language per pool)",
                   12, fill=INK, weight=600),
             _text(left, 36, "outlined: monolingual diagonal; margins: mean cross-lingual penalty S(X,Y) − S(X,X)", 11),
             _text(left - 8, top - 8, "q \\ pool", 10.5, "end")]
    for j, lang in enumerate(m.langs):
        colour = EN_COLOUR if lang == "en" else INK
        parts.append(_text(left + (j + 0.5) * cell, top - 8, lang, 11.5, "middle", colour, 600))
        parts.append(_text(left - 8, top + (j + 0.5) * cell + 4, lang, 11.5, "end", colour, 600))
    for i, q in enumerate(m.langs):
        for j, p in enumerate(m.langs):
            parts.append(_cell(m, q, p, left + j * cell, top + i * cell, cell))
    mx = left + grid_w + 16
    parts.append(_text(mx + cell * 0.7, top - 8, "penalty", 10.5, "middle"))
    for i, q in enumerate(m.langs):
        parts.append(_margin(m.mean_penalty(query=q), mx, top + i * cell, cell * 1.4, cell,
                             f"queries in {q}: mean penalty over the other pools"))
    my = top + grid_w + 8
    parts.append(_text(left - 8, my + cell * 0.45, "penalty", 10.5, "end"))
    for j, p in enumerate(m.langs):
        parts.append(_margin(m.mean_penalty(pool=p), left + j * cell, my, cell, cell * 0.8,
                             f"pool in {p}: mean penalty of the other query languages"))
    return _svg(width, height, "".join(parts), f"language matrix {d.label}")


def _cell(m: LanguageMatrix, q: str, p: str, x: float, y: float, size: float) -> str:
    d = display(m.metric)
    value = m.score(q, p)
    if value is None:
        return _rect(x + 1, y + 1, size - 2, size - 2, "#ffffff", tip=f"{q}→{p}: no judged query") + _text(
            x + size / 2, y + size / 2 + 4, "–", 11, "middle")
    ci = m.ci.get((q, p))
    tip = f"queries {q} → pool {p}: {d.label} {d.value(value, precise=True)}" + (f" (95% CI {d.ci(ci)})" if ci else "")
    penalty, asym = m.penalty(q, p), m.asymmetry(q, p)
    if q != p and penalty is not None:
        tip += f"; penalty vs {q}→{q} {penalty:+.1f}"
    if q != p and asym is not None:
        tip += f"; asymmetry vs {p}→{q} {asym:+.1f}"
    ink = "#ffffff" if value > 55 else INK
    parts = [_rect(x + 1, y + 1, size - 2, size - 2, heat_colour(value), tip=tip, rx=2)]
    if q == p:
        parts.append(_el("rect", "", None, x=x + 1.5, y=y + 1.5, width=size - 3.0, height=size - 3.0, fill="none",
                         stroke=EN_COLOUR if q == "en" else MUTED, stroke_width=2.0, rx=2.0))
    parts.append(_text(x + size / 2, y + size / 2 + 4, d.value(value), 11 if size > 40 else 9.5, "middle", ink))
    return "".join(parts)


def _margin(value: float | None, x: float, y: float, w: float, h: float, what: str) -> str:
    if value is None:
        return _text(x + w / 2, y + h / 2 + 4, "–", 10.5, "middle")
    return (_rect(x + 1, y + 1, w - 2, h - 2, penalty_colour(value), tip=f"{what}: {value:+.1f}", rx=2)
            + _text(x + w / 2, y + h / 2 + 4, f"{value:+.1f}", 10.5, "middle", INK))
