"""Uncertainty over queries: bootstrap confidence intervals, paired model comparisons, language gaps.

Every function takes per-query values as `evaluate` returns them (NaN = the metric does not apply to
that query) and drops the NaNs first. Resampling uses a numpy Generator seeded with `DEFAULT_SEED`
unless told otherwise, so the same inputs always give the same interval.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

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

    `difference` is mean(A) - mean(B) in metric units, with a paired-bootstrap interval. `p_value` is
    two-sided, from a paired sign-flip randomisation test of that mean difference (exact enumeration of
    all 2^n sign patterns when that is no more than the resample count). wins/ties/losses count queries
    where A is better/equal/worse under the metric's direction.
    """

    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    p_value: float
    wins: int
    ties: int
    losses: int
    n: int
    confidence: float


@dataclass(frozen=True)
class LanguageGap:
    """mean(English queries) - mean(other-language queries), in metric units, with a bootstrap interval."""

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


def _sign_flip_p_value(differences: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    n = differences.size
    observed = abs(float(differences.mean()))
    tolerance = 1e-12 * max(1.0, observed)
    if 2 ** n <= n_resamples:
        patterns = np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]
        flipped = np.abs(((patterns & 1) * 2 - 1) @ differences) / n
        return float(np.mean(flipped >= observed - tolerance))
    extreme = 0
    rows_per_chunk = max(1, _MAX_RESAMPLE_CELLS // n)
    for start in range(0, n_resamples, rows_per_chunk):
        rows = min(rows_per_chunk, n_resamples - start)
        signs = rng.integers(0, 2, size=(rows, n)) * 2 - 1
        extreme += int(np.count_nonzero(np.abs(signs @ differences) / n >= observed - tolerance))
    return (extreme + 1) / (n_resamples + 1)


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
    rng = np.random.default_rng(seed)
    differences = a - b
    low, high = _percentile_interval(_bootstrap_means(differences, n_resamples, rng), confidence)
    p_value = _sign_flip_p_value(differences, n_resamples, rng)
    improvement = metric.improvement(a, b)
    return PairedComparison(
        mean_a=float(a.mean()), mean_b=float(b.mean()), difference=float(differences.mean()),
        low=low, high=high, p_value=p_value,
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
