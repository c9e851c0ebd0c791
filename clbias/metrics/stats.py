"""Uncertainty over queries: bootstrap confidence intervals, paired model comparisons, language gaps, and
the one rule that decides significance.

Every function takes per-query values as `evaluate` returns them (NaN = the metric does not apply to
that query) and drops the NaNs first. Resampling uses a numpy Generator seeded with `DEFAULT_SEED`
unless told otherwise, so the same inputs always give the same interval.

The rules, used by every star, colour, verdict, `compare`, the int8 rule and the benchmarks:
- `significant(low, high)`: a difference is significant when its paired bootstrap CI excludes 0.
- `non_inferior(...)`: "no harm" at a stated margin: the CI end on the losing side stays within the margin.
- `holm_significant(...)`: a decision over many cells (languages x scenarios x metrics) controls the
  family-wise error with Holm's step-down, each step read as a CI at the adjusted level.
There is no separate p-value test: a p-value beside a CI could disagree with it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from .registry import Metric, get_metric

DEFAULT_SEED = 20260405
DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
_MAX_RESAMPLE_CELLS = 4_000_000  # bounds the (resamples x queries) index matrix held at once


@dataclass(frozen=True)
class Estimate:
    """A mean over queries with its percentile-bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the queries where the metric applies to both.

    `difference` is mean(A) - mean(B) in metric units, with a paired-bootstrap interval (significant when
    it excludes 0: `significant`). wins/ties/losses count queries where A is better/equal/worse under the
    metric's direction.
    """

    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    n: int
    confidence: float


@dataclass(frozen=True)
class LanguageGap:
    """mean(English queries) - mean(other-language queries), in metric units, with a bootstrap interval.
    Paired: n_english == n_other == the number of pairs (the same question in both languages)."""

    gap: float
    low: float
    high: float
    n_english: int
    n_other: int
    paired: bool
    confidence: float


def _applicable(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[~np.isnan(values)]


def _bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = values.size
    means = np.empty(n_resamples)
    rows_per_chunk = max(1, _MAX_RESAMPLE_CELLS // n)
    for start in range(0, n_resamples, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_resamples)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


@lru_cache(maxsize=4)
def _seeded_resamples(n: int, n_resamples: int, seed: int) -> tuple[np.ndarray, ...]:
    """The index chunks `_bootstrap_means` draws from a fresh generator seeded with `seed`, drawn the same
    way (so the means are identical) and kept: an audit asks for them once per metric and scenario, and
    the metrics of a scenario mostly share n. Stored as int32, read-only."""
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, _MAX_RESAMPLE_CELLS // n)
    chunks = []
    for start in range(0, n_resamples, rows_per_chunk):
        chunk = rng.integers(0, n, size=(min(start + rows_per_chunk, n_resamples) - start, n)).astype(np.int32)
        chunk.flags.writeable = False
        chunks.append(chunk)
    return tuple(chunks)


@lru_cache(maxsize=64)
def _seeded_resamples_after(first: int, n: int, n_resamples: int, seed: int) -> tuple[np.ndarray, ...]:
    """The draws `_bootstrap_means` makes for a second group of size n from a generator seeded with `seed`
    that first drew for a group of size `first` (an unpaired language gap), kept like `_seeded_resamples`."""
    rng = np.random.default_rng(seed)
    for sizes in ((first, None), (n, "keep")):
        size, keep = sizes
        rows_per_chunk = max(1, _MAX_RESAMPLE_CELLS // size)
        chunks = []
        for start in range(0, n_resamples, rows_per_chunk):
            chunk = rng.integers(0, size, size=(min(start + rows_per_chunk, n_resamples) - start, size))
            if keep:
                chunk = chunk.astype(np.int32)
                chunk.flags.writeable = False
                chunks.append(chunk)
    return tuple(chunks)


def _seeded_bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """`_bootstrap_means(values, n_resamples, np.random.default_rng(seed))`, with the draws cached when
    they are small (at most _MAX_RESAMPLE_CELLS indices)."""
    n = values.size
    if n * n_resamples > _MAX_RESAMPLE_CELLS:
        return _bootstrap_means(values, n_resamples, np.random.default_rng(seed))
    return np.concatenate([values[chunk].mean(axis=1) for chunk in _seeded_resamples(n, n_resamples, seed)])


def bootstrap_ci(values: np.ndarray, *, confidence: float = DEFAULT_CONFIDENCE,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Estimate | None:
    """Mean of the applicable values with a percentile-bootstrap interval; None if none applies."""
    sample = _applicable(values)
    if sample.size == 0:
        return None
    means = _seeded_bootstrap_means(sample, n_resamples, seed)
    low, high = _percentile_interval(means, confidence)
    return Estimate(float(sample.mean()), low, high, int(sample.size), confidence)


def summarize(per_query: Mapping[str, np.ndarray], *, confidence: float = DEFAULT_CONFIDENCE,
              n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Estimate | None]:
    """`bootstrap_ci` for every metric of an `evaluate` result, the same draws and intervals (up to float
    rounding of the sums). Metrics with the same number of applicable queries share their resamples, so
    their bootstrap means are one product: (how often each query is drawn in each resample) x values."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    samples = {name: _applicable(values) for name, values in per_query.items()}
    out: dict[str, Estimate | None] = {}
    by_size: dict[int, list[str]] = {}
    for name, sample in samples.items():
        if sample.size == 0:
            out[name] = None
        elif sample.size * n_resamples > _MAX_RESAMPLE_CELLS:
            out[name] = bootstrap_ci(sample, confidence=confidence, n_resamples=n_resamples, seed=seed)
        else:
            by_size.setdefault(sample.size, []).append(name)
    for n, names in by_size.items():
        values = np.stack([samples[name] for name in names], axis=1)
        means = _draw_counts(n, n_resamples, seed) @ values / n
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
        for j, name in enumerate(names):
            out[name] = Estimate(float(values[:, j].mean()), float(low[j]), float(high[j]), n, confidence)
    return {name: out[name] for name in per_query}


@lru_cache(maxsize=8)
def _draw_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """[n_resamples, n]: how often each of n queries is drawn in each of `_seeded_resamples`' resamples."""
    rows = np.concatenate(_seeded_resamples(n, n_resamples, seed)).astype(np.int64)
    flat = (np.arange(n_resamples, dtype=np.int64)[:, None] * n + rows).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
    counts.flags.writeable = False
    return counts


def paired_comparison(a: np.ndarray, b: np.ndarray, metric: Metric | str, *,
                      confidence: float = DEFAULT_CONFIDENCE, n_resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED, tie_tolerance: float = 1e-9) -> PairedComparison | None:
    """Compare two models' per-query values on the same queries (aligned arrays).

    Queries where either value is NaN are dropped; None if no query is left.
    """
    metric = get_metric(metric) if isinstance(metric, str) else metric
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same queries: shapes {a.shape} and {b.shape}")
    both = ~(np.isnan(a) | np.isnan(b))
    a, b = a[both], b[both]
    if a.size == 0:
        return None
    differences = a - b
    low, high = _percentile_interval(paired_bootstrap_means(differences, n_resamples, seed), confidence)
    improvement = metric.improvement(a, b)
    return PairedComparison(
        mean_a=float(a.mean()), mean_b=float(b.mean()), difference=float(differences.mean()),
        low=low, high=high,
        wins=int(np.count_nonzero(improvement > tie_tolerance)),
        ties=int(np.count_nonzero(np.abs(improvement) <= tie_tolerance)),
        losses=int(np.count_nonzero(improvement < -tie_tolerance)),
        n=int(a.size), confidence=confidence)


def language_gap(english: np.ndarray, other: np.ndarray, *, paired: bool = False,
                 confidence: float = DEFAULT_CONFIDENCE, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> LanguageGap | None:
    """metric(English queries) - metric(other-language queries) with a bootstrap interval.

    Unpaired (default): each group is resampled on its own. Paired: `english[i]` and `other[i]` are the
    same question in two languages; pairs with a NaN on either side are dropped and the per-pair
    differences are resampled. None if a group has no applicable query.
    """
    english, other = np.asarray(english, dtype=float), np.asarray(other, dtype=float)
    rng = np.random.default_rng(seed)
    if paired:
        if english.shape != other.shape:
            raise ValueError(f"paired gap needs aligned queries: shapes {english.shape} and {other.shape}")
        both = ~(np.isnan(english) | np.isnan(other))
        if not both.any():
            return None
        differences = english[both] - other[both]
        samples = _seeded_bootstrap_means(differences, n_resamples, seed)  # the draws of a fresh `rng`
        n_english = n_other = int(differences.size)
        gap = float(differences.mean())
    else:
        english, other = _applicable(english), _applicable(other)
        if english.size == 0 or other.size == 0:
            return None
        if (english.size + other.size) * n_resamples <= 2 * _MAX_RESAMPLE_CELLS:  # the same draws, kept
            second = _seeded_resamples_after(english.size, other.size, n_resamples, seed)
            samples = _seeded_bootstrap_means(english, n_resamples, seed) - np.concatenate(
                [other[chunk].mean(axis=1) for chunk in second])
        else:
            samples = _bootstrap_means(english, n_resamples, rng) - _bootstrap_means(other, n_resamples, rng)
        n_english, n_other = int(english.size), int(other.size)
        gap = float(english.mean() - other.mean())
    low, high = _percentile_interval(samples, confidence)
    return LanguageGap(gap, low, high, n_english, n_other, paired, confidence)


# ---------------------------------------------------------------- the one significance rule


def significant(low: float, high: float) -> bool:
    """The one significance rule: a paired difference is significant when its bootstrap CI excludes 0."""
    return bool(low > 0.0 or high < 0.0)


def significant_loss(low: float, high: float, *, lower_is_better: bool = False) -> bool:
    """`significant`, on the losing side of a difference `new - base` (higher loses for lower-better metrics)."""
    return bool(low > 0.0) if lower_is_better else bool(high < 0.0)


def non_inferior(low: float, high: float, margin: float, *, lower_is_better: bool = False) -> bool:
    """"No harm" at `margin` (metric units) for a difference `new - base`: the CI end on the losing side stays
    within the margin (lower bound >= -margin; for lower-better metrics, upper bound <= +margin)."""
    if margin < 0:
        raise ValueError(f"a non-inferiority margin is >= 0, got {margin}")
    return bool(high <= margin) if lower_is_better else bool(low >= -margin)


def equivalent(low: float, high: float, margin: float) -> bool:
    """Equivalence at `margin`: the whole CI of a difference lies within [-margin, +margin] ("within 5 points
    of neutral" as a claim, not as a point estimate)."""
    if margin < 0:
        raise ValueError(f"an equivalence margin is >= 0, got {margin}")
    return bool(-margin <= low and high <= margin)


def paired_bootstrap_means(differences: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES,
                           seed: int = DEFAULT_SEED) -> np.ndarray:
    """Bootstrap means of per-query paired differences (NaNs dropped): the draws every paired CI reads."""
    sample = _applicable(differences)
    if sample.size == 0:
        return np.empty(0)
    return _bootstrap_means(sample, n_resamples, np.random.default_rng(seed))


@dataclass(frozen=True)
class CellDecision:
    """One cell of a many-cell decision: its CI at the level Holm's step-down gave it, and the outcome."""

    index: int  # position in the caller's list of cells
    confidence: float  # the level Holm gave the cell: 1 - alpha / (cells not yet decided at its step)
    low: float
    high: float
    significant: bool


def _t_quantile(p: float, df: int) -> float:
    """Student's t quantile (Cornish-Fisher expansion around the normal one; within 0.2% for df >= 5)."""
    z = NormalDist().inv_cdf(p)
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def paired_interval(differences: np.ndarray, confidence: float = DEFAULT_CONFIDENCE,
                    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float] | None:
    """The paired bootstrap CI of a mean difference at `confidence` (NaNs dropped; None when none is left).

    Up to 95%: the percentile interval, as every comparison of a report. Above (Holm's adjusted levels, e.g.
    1 - 0.05/90): the bootstrap normal interval, mean +- t quantile x bootstrap standard error. A percentile
    interval's extreme quantiles follow the chance skew of the one sample that ranks most extreme: on a
    simulated unchanged model it called a loss at level 1 - 0.0005 in 3.7x the nominal share of cells,
    the normal interval in 0.6x (tests/test_noharm.py holds the rule to it)."""
    sample = _applicable(differences)
    if sample.size == 0:
        return None
    means = paired_bootstrap_means(sample, n_resamples, seed)
    if confidence <= DEFAULT_CONFIDENCE or sample.size < 2:
        return _percentile_interval(means, confidence)
    half = _t_quantile(1.0 - (1.0 - confidence) / 2.0, sample.size - 1) * float(means.std(ddof=1))
    mean = float(sample.mean())
    return mean - half, mean + half


def _loss_evidence(differences: np.ndarray, side: bool | None) -> float:
    """How strongly a cell points to a difference (on its loss side, when named): the t statistic of its
    mean, larger = stronger. It only orders the cells of Holm's procedure; every decision is a CI."""
    sample = _applicable(differences)
    if sample.size == 0:
        return -np.inf
    mean = float(sample.mean())
    se = float(sample.std(ddof=1)) / np.sqrt(sample.size) if sample.size > 1 else 0.0
    signed = abs(mean) if side is None else (mean if side else -mean)
    if se == 0.0:
        return np.inf if signed > 0 else -np.inf if signed < 0 else 0.0
    return signed / se


def holm_significant(differences: list[np.ndarray], *, alpha: float = 1.0 - DEFAULT_CONFIDENCE,
                     n_resamples: int | None = None, seed: int = DEFAULT_SEED,
                     loss_side: list[bool | None] | None = None) -> list[CellDecision]:
    """Holm's step-down over many cells, each cell a vector of per-query paired differences (new - base).

    Cells are taken strongest first (`_loss_evidence`); the i-th (0-based) of m is decided by its paired
    bootstrap CI at level 1 - alpha/(m - i) (`paired_interval`; `significant`, or `significant_loss` on the
    cell's side), and the procedure stops at the first cell that is not significant: the chance that any cell
    of an unchanged model is called significant is at most alpha (family-wise error), whatever the number of
    cells. `loss_side`: per cell, True when a positive difference is a loss (lower-better metrics), False when
    a negative one is, None for either side. One cell alone is read exactly as a report's 95% CI.
    Returns one decision per cell, in input order; a cell after the stop carries its would-be level and NaN
    bounds.
    """
    m = len(differences)
    sides = loss_side or [None] * m
    if len(sides) != m:
        raise ValueError(f"loss_side names {len(sides)} cells, differences {m}")
    order = sorted(range(m), key=lambda i: (-_loss_evidence(differences[i], sides[i]), i))
    out: dict[int, CellDecision] = {}
    stopped = False
    for step, i in enumerate(order):
        level = 1.0 - alpha / (m - step)
        interval = None if stopped else paired_interval(differences[i], level, n_resamples or DEFAULT_RESAMPLES, seed)
        if interval is None:
            out[i] = CellDecision(i, level, float("nan"), float("nan"), False)
            stopped = True
            continue
        low, high = interval
        side = sides[i]
        hit = significant(low, high) if side is None else significant_loss(low, high, lower_is_better=side)
        stopped = not hit
        out[i] = CellDecision(i, level, low, high, hit)
    return [out[i] for i in range(m)]
