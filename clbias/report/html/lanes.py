"""Which scenarios a plot draws, one row (lane) each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..model import ModelScores, Report, ScenarioResult
from .svg import EN_COLOUR, INK, _is_en, _text


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
