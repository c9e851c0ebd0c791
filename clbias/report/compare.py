"""Two saved audits of the same corpus as one two-model Report, with paired comparisons per scenario.

Scenarios are matched by name and queries by id (`ScenarioResult.query_ids`); each metric is compared on
the queries both audits judged, with the same paired bootstrap and sign-flip test as a two-model audit
(`compare`, which the audit calls too), so the verdict reads the merged report exactly as it reads a live one.

A metric that either side only bounds (a run file's censored queries, `ModelScores.bounds`) gets no point
difference: its comparison holds bounds on the difference instead, `diff_low` (the other's low bound minus
the base's high bound, per query) and `diff_high`, with the low end of the first's CI and the high end of
the second's, and `censored: true`.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..metrics import stats
from ..model_paths import graph_tag
from .model import Comparison, ModelInfo, ModelScores, Report, ScenarioResult

SAME_CORPUS_FIELDS = ("name", "n_docs", "doc_langs", "query_langs")
SAME_SETTINGS = ("k", "expand_translations")


def _check_same(a: Report, b: Report, a_name: str, b_name: str) -> None:
    for key in SAME_CORPUS_FIELDS:
        if a.corpus.get(key) != b.corpus.get(key):
            raise InputError(f"{a_name} and {b_name} audit different corpora (corpus {key}: "
                             f"{a.corpus.get(key)!r} vs {b.corpus.get(key)!r})")
    for key in SAME_SETTINGS:
        if a.settings.get(key) != b.settings.get(key):
            raise InputError(f"{a_name} and {b_name} used different settings ({key}: "
                             f"{a.settings.get(key)!r} vs {b.settings.get(key)!r}); compare audits run alike")


def _has_per_query(report: Report) -> bool:
    return any(s.per_query for r in report.scenarios for s in r.by_model.values())


def _labels(a: ModelInfo, b: ModelInfo, a_name: str, b_name: str) -> tuple[str, str]:
    """The models' names; the same model becomes `name:fp32`/`name:int8` by graph, else `name (file)`."""
    if a.name != b.name:
        return a.name, b.name
    if a.onnx != b.onnx and a.kind == b.kind == "model":
        return f"{a.name}:{graph_tag(a.onnx)}", f"{b.name}:{graph_tag(b.onnx)}"
    a_label, b_label = Path(a_name).stem, Path(b_name).stem
    if a_label == b_label:
        a_label, b_label = a_name, b_name
    return f"{a.name} ({a_label})", f"{b.name} ({b_label})"


def _aligned(scores: ModelScores, ids: list[str], common: list[str]) -> ModelScores:
    pos = {q: i for i, q in enumerate(ids)}
    bounds = {m: {**b, "per_query": [[side[pos[q]] for q in common] for side in b["per_query"]]}
              for m, b in scores.bounds.items() if len(b.get("per_query", [[]])[0]) == len(ids)}
    return replace(scores, per_query={m: [v[pos[q]] for q in common] for m, v in scores.per_query.items()
                                      if len(v) == len(ids)}, bounds=bounds)


def _values(xs: list[float | None]) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in xs], dtype=float)


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), digits)


def _pair(low: float, high: float) -> list[float]:
    return [round(float(low), 4), round(float(high), 4)]


def _sides(scores: ModelScores, n: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-query (low, high) of a metric: its bounds where censored, else the exact value twice."""
    if n in scores.bounds and scores.bounds[n].get("per_query"):
        low, high = scores.bounds[n]["per_query"]
        return _values(low), _values(high)
    exact = _values(scores.per_query[n])
    return exact, exact


def compare(base: str, other: str, a: ModelScores, b: ModelScores, names: list[str], bootstrap: int = 1000,
            seed: int = 0) -> Comparison:
    """`other` (b) against `base` (a), per metric, on the same queries: paired bootstrap CI, sign-flip p-value,
    wins/ties/losses (clbias.metrics.stats)."""
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        if n in a.bounds or n in b.bounds:
            out[n] = _bounded_difference(a, b, n, bootstrap, seed)
            continue
        c = stats.paired_comparison(_values(b.per_query[n]), _values(a.per_query[n]), n, n_resamples=bootstrap,
                                    seed=seed)
        out[n] = {"diff": None} if c is None else {
            "base": _round(c.mean_b), "other": _round(c.mean_a), "diff": _round(c.difference),
            "ci": _pair(c.low, c.high), "p_value": _round(c.p_value), "wins": c.wins, "ties": c.ties,
            "losses": c.losses, "n": c.n}
    return Comparison(base=base, other=other, metrics=out)


def _bounded_difference(a: ModelScores, b: ModelScores, n: str, bootstrap: int, seed: int) -> dict[str, Any]:
    a_low, a_high = _sides(a, n)
    b_low, b_high = _sides(b, n)
    low = stats.paired_comparison(b_low, a_high, n, n_resamples=bootstrap, seed=seed)
    high = stats.paired_comparison(b_high, a_low, n, n_resamples=bootstrap, seed=seed)
    if low is None or high is None:
        return {"diff": None, "censored": True}
    return {"diff": None, "censored": True, "diff_low": _round(low.difference), "diff_high": _round(high.difference),
            "ci": _pair(low.low, high.high), "n": low.n}


def compare_reports(a: Report, b: Report, a_name: str = "A", b_name: str = "B") -> tuple[Report, list[str]]:
    """(merged report: `a`'s first model as the base, `b`'s as the other; notes on what could not be paired)."""
    _check_same(a, b, a_name, b_name)
    for report, name in ((a, a_name), (b, b_name)):
        if not _has_per_query(report):
            raise InputError(f"{name} has no per-query values, so it cannot be compared query by query; re-run the "
                             "audit with --json (per-query values are written unless --no-per-query)")
    base, other = _labels(a.model, b.model, a_name, b_name)
    bootstrap, seed = int(a.settings.get("bootstrap", 1000)), int(a.settings.get("seed", 0))
    theirs = {r.name: r for r in b.scenarios}
    merged: list[ScenarioResult] = []
    notes: list[str] = []
    for r in a.scenarios:
        s = theirs.get(r.name)
        if s is None:
            notes.append(f"{r.name}: only in {a_name}")
            continue
        mine_scores, their_scores = r.by_model[a.model.name], s.by_model[b.model.name]
        if r.query_ids and s.query_ids:
            common = [q for q in r.query_ids if q in set(s.query_ids)]
            mine_scores = _aligned(mine_scores, r.query_ids, common)
            their_scores = _aligned(their_scores, s.query_ids, common)
        elif r.n_queries != s.n_queries:
            notes.append(f"{r.name}: no query ids and different query counts; not compared")
            continue
        names = [m for m in mine_scores.per_query if m in their_scores.per_query]
        comparison = compare(base, other, mine_scores, their_scores, names, bootstrap, seed)
        merged.append(replace(r, by_model={base: r.by_model[a.model.name], other: s.by_model[b.model.name]},
                              comparisons=[comparison]))
    notes += [f"{name}: only in {b_name}" for name in theirs if name not in {r.name for r in a.scenarios}]
    if not merged:
        raise InputError(f"{a_name} and {b_name} have no scenario in common")
    models = [replace(a.model, name=base), replace(b.model, name=other)]
    gaps = [replace(g, model=base) for g in a.gaps if g.model == a.model.name] + [
        replace(g, model=other) for g in b.gaps if g.model == b.model.name]
    report = replace(a, models=models, scenarios=merged, gaps=gaps, notes=notes, run_files=[],
                     truncation={base: a.truncation.get(a.model.name, {}), other: b.truncation.get(b.model.name, {})},
                     timings={})
    return report, notes
