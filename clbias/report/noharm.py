"""Does model `other` harm retrieval against `base`? The rule behind the int8 decision, in one place.

Both models were audited side by side (one Report, the same queries). A *cell* is one scenario, one language
and one metric; its value is the per-query paired difference other - base. Two questions, two answers:

- **Harm detected** (the rule's pass/fail): some cell shows a significant loss, read by Holm's step-down over
  all cells (`clbias.metrics.stats.holm_significant`). The chance that an unchanged model fails is at most
  `alpha` however many cells are judged (tests/test_noharm.py simulates it). A recipe *passes* when no harm
  is detected.
- **No harm shown** at `margin` points: every cell is non-inferior (`stats.non_inferior`: the paired 95% CI's
  end on the losing side stays within the margin). This is the claim "int8 costs at most `margin` points";
  no multiplicity correction is needed for it (an intersection-union test: every cell must pass on its own),
  but it needs narrow CIs, so a small evaluation set can pass the rule without showing it.

A graph may replace the default only when it passes and shows no harm.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..metrics import stats
from ..metrics.registry import Direction, get_metric
from .model import Report, ScenarioResult

DEFAULT_MARGIN = 1.0  # points
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Cell:
    scenario: str  # the scenario's name
    kind: str
    lang: str  # the language the cell speaks for (query language; mono-cross: the pool's)
    metric: str
    n: int
    base: float
    other: float
    diff: float  # other - base
    ci: tuple[float, float]  # paired 95% CI of diff (the report's)
    holm_ci: tuple[float, float]  # the CI at the level Holm's step-down gave this cell
    holm_confidence: float
    loss: float  # > 0: `other` is worse, in points, by the metric's direction
    harm: bool  # a significant loss under Holm
    non_inferior: bool  # the 95% CI's losing end within the margin


@dataclass(frozen=True)
class NoHarmVerdict:
    cells: list[Cell] = field(default_factory=list)
    margin: float = DEFAULT_MARGIN
    alpha: float = DEFAULT_ALPHA

    @property
    def harmed(self) -> list[Cell]:
        return [c for c in self.cells if c.harm]

    @property
    def passes(self) -> bool:
        """No family-wise significant loss (and at least one cell judged)."""
        return bool(self.cells) and not self.harmed

    @property
    def no_harm_shown(self) -> bool:
        return bool(self.cells) and all(c.non_inferior for c in self.cells)

    @property
    def may_replace(self) -> bool:
        return self.passes and self.no_harm_shown

    def describe(self) -> str:
        return (f"{len(self.cells)} cells; harm (significant loss, Holm over all cells, family-wise error "
                f"{self.alpha:g}): {len(self.harmed)}; non-inferior at {self.margin:g} point{'s' * (self.margin != 1)} (95% CI): "
                f"{sum(c.non_inferior for c in self.cells)}/{len(self.cells)}")


def _values(scores: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in scores], dtype=float)


def cell_lang(r: ScenarioResult) -> str:
    return r.pool_langs[0] if r.kind == "mono-cross" else r.query_lang


def judge_no_harm(report: Report, base: str, other: str, judged: dict[str, Iterable[str]],
                  langs: Iterable[str] | None = None, *, margin: float = DEFAULT_MARGIN,
                  alpha: float = DEFAULT_ALPHA, n_resamples: int | None = None,
                  seed: int | None = None) -> NoHarmVerdict:
    """Judge `other` against `base` over the cells `judged` names (scenario kind -> metrics), in `langs`
    (None: every language). Needs per-query values (a live audit or one saved with them). The 95% CIs are
    the report's own (same resamples and seed); `n_resamples`: per Holm step (default: enough for its level)."""
    wanted = set(langs) if langs is not None else None
    seed = int(report.settings.get("seed", 0)) if seed is None else seed
    for kind_metrics in judged.values():
        for m in kind_metrics:
            if get_metric(m).direction not in (Direction.HIGHER, Direction.LOWER):
                raise ValueError(f"{m} has no losing side (its ideal is a value, not an end); it cannot be judged")
    keys: list[tuple[ScenarioResult, str, np.ndarray, float, float, tuple[float, float]]] = []
    for r in report.scenarios:
        metrics = judged.get(r.kind)
        if not metrics or (wanted is not None and cell_lang(r) not in wanted | {"en"}):
            continue
        if base not in r.by_model or other not in r.by_model:
            continue
        for m in metrics:
            a, b = r.by_model[base].per_query.get(m), r.by_model[other].per_query.get(m)
            if not a or not b:
                if r.by_model[base].metrics.get(m) is not None:
                    raise ValueError(f"{r.name}: no per-query values of {m}; audit with per-query values")
                continue
            va, vb = _values(a), _values(b)
            both = ~(np.isnan(va) | np.isnan(vb))
            if not both.any():
                continue
            comparison = stats.paired_comparison(vb, va, m, n_resamples=int(report.settings.get("bootstrap", 1000)),
                                                 seed=seed)
            assert comparison is not None
            keys.append((r, m, vb[both] - va[both], float(va[both].mean()), float(vb[both].mean()),
                         (comparison.low, comparison.high)))
    lower: list[bool | None] = [get_metric(m).direction is Direction.LOWER for _, m, _, _, _, _ in keys]
    decisions = stats.holm_significant([d for _, _, d, _, _, _ in keys], alpha=alpha, n_resamples=n_resamples,
                                       seed=seed, loss_side=lower)
    cells = []
    for (r, m, d, mb, mo, ci), low_better, dec in zip(keys, lower, decisions):
        diff = float(d.mean())
        cells.append(Cell(r.name, r.kind, cell_lang(r), m, int(d.size), round(mb, 4), round(mo, 4), round(diff, 4),
                          (round(ci[0], 4), round(ci[1], 4)), (round(dec.low, 4), round(dec.high, 4)),
                          dec.confidence, round(diff if low_better else -diff, 4), dec.significant,
                          stats.non_inferior(ci[0], ci[1], margin, lower_is_better=bool(low_better))))
    return NoHarmVerdict(cells, margin, alpha)
