"""The metric registry: every metric clbias reports, declared once, looked up by its exact JSON key.

Fixed metrics have one name (`max_r`, `eir`); families take a cutoff in the name (`ndcg@10`, `complete@5`).
A per-query function returns None where the metric does not apply to a query; `evaluate` stores that as
NaN and `aggregate` averages over the queries where it applies.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np

from ..errors import InputError
from . import bias, columnar, field, field_columnar, ranking
from .columnar import ColumnarRuns
from .types import PoolInfo, QueryRun

PerQuery = Callable[[QueryRun, PoolInfo], float | None]
PerQueryAt = Callable[[QueryRun, PoolInfo, int], float | None]
Vectorised = Callable[[ColumnarRuns, PoolInfo], np.ndarray]
VectorisedAt = Callable[[ColumnarRuns, PoolInfo, int], np.ndarray]
Origin = Literal["paper", "ours"]


class Direction(str, Enum):
    HIGHER = "higher"
    LOWER = "lower"
    TOWARD_IDEAL = "toward_ideal"  # best at `Metric.ideal`, worse the further away on either side


@dataclass(frozen=True)
class Metric:
    name: str
    per_query: PerQuery
    direction: Direction
    unit: str
    fmt: str  # format spec for one aggregate value, e.g. ".2f"
    description: str
    origin: Origin
    ideal: float | None = None
    # All queries at once over ColumnarRuns, NaN where it does not apply; equals `per_query` (the reference)
    vectorised: Vectorised | None = None
    source: str = ""  # the publication that defines it, and the reading taken where it is ambiguous

    def __call__(self, run: QueryRun, pool: PoolInfo) -> float | None:
        return self.per_query(run, pool)

    def improvement(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        """How much better `a` is than `b` under this metric's direction (> 0: a is better)."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if self.direction is Direction.HIGHER:
            return a - b
        if self.direction is Direction.LOWER:
            return b - a
        ideal = 0.0 if self.ideal is None else self.ideal
        return np.abs(b - ideal) - np.abs(a - ideal)

    def format(self, value: float | None) -> str:
        return "n/a" if value is None or not np.isfinite(value) else format(value, self.fmt)


@dataclass(frozen=True)
class MetricFamily:
    """Metrics that differ only by a rank cutoff k, named `<prefix>@<k>`."""

    prefix: str
    per_query_at: PerQueryAt
    direction: Direction
    unit: str
    fmt: str
    description: str  # with "{k}"
    origin: Origin
    ideal: float | None = None
    vectorised_at: VectorisedAt | None = None
    source: str = ""

    def at(self, k: int) -> Metric:
        # The Callable aliases cannot name `k`, which every *_at function takes by keyword: hence the ignores.
        vectorised = None if self.vectorised_at is None else functools.partial(self.vectorised_at, k=k)  # type: ignore[call-arg]  # k: see above
        return Metric(name=f"{self.prefix}@{k}", per_query=functools.partial(self.per_query_at, k=k),  # type: ignore[call-arg]  # k: see above
                      direction=self.direction, unit=self.unit, fmt=self.fmt,
                      description=self.description.format(k=k), origin=self.origin, ideal=self.ideal,
                      vectorised=vectorised, source=self.source)


def _top1(relevance: bias.Relevance, language: bias.LanguageClass, direction: Direction, what: str) -> Metric:
    return Metric(name=f"top1_{relevance}_{language}",
                  per_query=functools.partial(bias.top1_indicator, relevance=relevance, language=language),
                  direction=direction, unit="points", fmt=".1f",
                  description=f"% of queries whose rank-1 document is {what}", origin="ours",
                  vectorised=functools.partial(columnar.top1_indicator, relevance=relevance, language=language))


FIXED_METRICS: tuple[Metric, ...] = (
    Metric("max_r", ranking.max_rank, Direction.LOWER, "rank", ".2f",
           "rank of the deepest relevant document (all of R seen by then)", "paper", vectorised=columnar.max_rank),
    Metric("max_r_norm", ranking.max_rank_norm, Direction.HIGHER, "points", ".2f",
           "Max@R on a log scale: 100 = relevant set at the top, 0 = last relevant ranked last", "paper",
           vectorised=columnar.max_rank_norm),
    Metric("eir", bias.english_inclination, Direction.LOWER, "points", ".2f",
           "% of non-English queries where an irrelevant English doc outranks the best relevant native doc",
           "ours", vectorised=columnar.english_inclination),
    Metric("eir_neutral", bias.neutral_inclination, Direction.LOWER, "points", ".2f",
           "the EIR a language-blind model of the same ranking quality shows: % of non-English queries where an "
           "irrelevant native doc with an English twin outranks the best relevant native doc", "ours",
           vectorised=columnar.neutral_inclination),
    Metric("twin_pref", bias.twin_preference, Direction.TOWARD_IDEAL, "points", ".1f",
           "% of irrelevant (English, query-language) twin pairs in the head where the English twin ranks "
           "higher; 50 = neutral, > 50 prefers English, < 50 prefers the query's language", "ours", ideal=50.0,
           vectorised=columnar.twin_preference),
    _top1("rel", "same", Direction.HIGHER, "relevant, in the query's language"),
    _top1("rel", "en", Direction.HIGHER, "relevant, in English (non-English queries)"),
    _top1("rel", "other", Direction.HIGHER, "relevant, in a third language"),
    _top1("irr", "same", Direction.LOWER, "irrelevant, in the query's language"),
    _top1("irr", "en", Direction.LOWER, "irrelevant, in English (non-English queries)"),
    _top1("irr", "other", Direction.LOWER, "irrelevant, in a third language"),
    Metric("twin_rank_gap", bias.twin_rank_gap, Direction.TOWARD_IDEAL, "ranks", ".2f",
           "mean rank(non-English twin) - rank(English twin) over relevant English-vs-X pairs; > 0 favours English",
           "ours", ideal=0.0, vectorised=columnar.twin_rank_gap),
    Metric("twin_score_gap", bias.twin_score_gap, Direction.TOWARD_IDEAL, "score", ".4f",
           "mean score(English twin) - score(non-English twin) over relevant English-vs-X pairs", "ours", ideal=0.0,
           vectorised=columnar.twin_score_gap),
    # The field's metrics (docs/field-metrics.md): each cites its paper and the reading clbias takes.
    Metric("lpr", field.language_preference_rate, Direction.HIGHER, "points", ".1f",
           "Language Preference Rate: % of queries whose best-ranked relevant document is in the query's language, "
           "over queries with relevant documents in their language and in another", "paper",
           vectorised=field_columnar.language_preference_rate,
           source="MLAIRE, Jang, Hong, Moon, Lim, arXiv 2605.07249 (LPR). Reading: over parallel relevant versions "
                  "of one answer, whether the query-language version ranks first (MLAIRE's controlled pools); "
                  "higher = stronger query-language preference, which MLAIRE counts as utility"),
    Metric("lang_pref", field.calibrated_language_preference, Direction.TOWARD_IDEAL, "points", ".1f",
           "calibrated language preference, no parallel ids needed: % of irrelevant (English, query-language) "
           "document pairs in the head where the English one ranks higher; 50 = neutral, > 50 prefers English",
           "ours", ideal=50.0, vectorised=field_columnar.calibrated_language_preference,
           source="ours, in the spirit of DeLP (Park, Kim, Hwang, Lee, arXiv 2601.02956): pairs, not counts, "
                  "factor out how many irrelevant documents each language holds (exposure); relevant documents are "
                  "left out (gold availability). Twin preference over all pairs, not only translation pairs"),
)

METRIC_FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily("complete", ranking.complete_at, Direction.HIGHER, "points", ".2f",
                 "% of queries with every relevant document in the top {k}", "paper",
                 vectorised_at=columnar.complete_at),
    MetricFamily("ndcg", ranking.ndcg_at, Direction.HIGHER, "points", ".2f",
                 "binary nDCG@{k} (trec_eval definition) x 100", "paper", vectorised_at=columnar.ndcg_at),
    MetricFamily("recall", ranking.recall_at, Direction.HIGHER, "points", ".2f",
                 "share of the relevant set in the top {k}, x 100", "paper", vectorised_at=columnar.recall_at),
    MetricFamily("mrr", ranking.mrr_at, Direction.HIGHER, "points", ".2f",
                 "reciprocal rank of the first relevant document within the top {k}, else 0; x 100", "paper",
                 vectorised_at=columnar.mrr_at),
    MetricFamily("en_exposure", bias.english_exposure_at, Direction.TOWARD_IDEAL, "ratio", ".3f",
                 "English share of the top {k} / English share of the pool (1 = parity)", "ours", ideal=1.0,
                 vectorised_at=columnar.english_exposure_at),
    MetricFamily("peer", field.peer_at, Direction.HIGHER, "probability", ".3f",
                 "PEER@{k}: probability that documents of each relevance level have equal expected rank whatever "
                 "their language (Kruskal-Wallis p, weights 0.5 irrelevant / 0.5 relevant); 1 = fair", "paper",
                 vectorised_at=field_columnar.peer_at,
                 source="Yang, Jänich, Mayfield, Lawrie, 'Language Fairness in Multilingual Information Retrieval', "
                        "SIGIR 2024 (arXiv 2405.00978); computed as the authors' peer_measure 0.0.1 does, including "
                        "its rank for unretrieved relevant documents, |R| + (U + 1) / 2"),
    MetricFamily("lang_ndcg", field.lang_ndcg_at, Direction.HIGHER, "points", ".2f",
                 "Lang-nDCG@{k}: binary nDCG@{k} x 100 in which only relevant documents in the query's language "
                 "earn gain", "paper", vectorised_at=field_columnar.lang_ndcg_at,
                 source="MLAIRE, arXiv 2605.07249 (Lang-nDCG). Reading: gain 1 for a relevant document in the "
                        "query's language, 0 for one in another language; ideal over the query-language relevant set"),
    MetricFamily("tlr", field.target_languages_recall_at, Direction.HIGHER, "points", ".2f",
                 "Target-Languages Recall@{k}: share of the relevant documents in languages other than the query's "
                 "that are in the top {k}, x 100", "paper", vectorised_at=field_columnar.target_languages_recall_at,
                 source="Shift, Jang, Hong, Moon, Lim, arXiv 2606.18801 (TLR@20 there). Reading: recall@k over the "
                        "relevant documents whose language differs from the query's (the target languages)"),
)

DEFAULT_METRICS: tuple[str, ...] = (
    "max_r", "max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "eir", "eir_neutral", "twin_pref",
    "en_exposure@10", "top1_rel_same", "top1_rel_en", "top1_rel_other", "top1_irr_same", "top1_irr_en",
    "top1_irr_other", "twin_rank_gap", "twin_score_gap",
)

_FIXED_BY_NAME = {metric.name: metric for metric in FIXED_METRICS}
_FAMILY_BY_PREFIX = {family.prefix: family for family in METRIC_FAMILIES}


def available_metrics() -> list[str]:
    """Every accepted name; families appear as `<prefix>@k`."""
    return [metric.name for metric in FIXED_METRICS] + [f"{family.prefix}@k" for family in METRIC_FAMILIES]


@functools.lru_cache(maxsize=None)
def get_metric(name: str) -> Metric:
    """The metric called `name` (case-insensitive); raises InputError for an unknown name or bad cutoff."""
    key = name.strip().lower()
    if key in _FIXED_BY_NAME:
        return _FIXED_BY_NAME[key]
    prefix, at, cutoff = key.partition("@")
    family = _FAMILY_BY_PREFIX.get(prefix)
    if family is None or not at:
        raise InputError(f"unknown metric '{name}'; known: {', '.join(available_metrics())}", field="metrics")
    if not cutoff.isdigit() or int(cutoff) < 1:
        raise InputError(f"metric '{name}': the cutoff after '@' must be a positive integer", field="metrics")
    return family.at(int(cutoff))


def _resolve(metrics: Iterable[str | Metric]) -> list[Metric]:
    return [m if isinstance(m, Metric) else get_metric(m) for m in metrics]


def evaluate(runs: Sequence[QueryRun] | ColumnarRuns, pool: PoolInfo,
             names: Iterable[str | Metric] = DEFAULT_METRICS) -> dict[str, np.ndarray]:
    """Per-query values, aligned with `runs`; NaN where a metric does not apply to a query.

    ColumnarRuns are scored by each metric's vectorised function (all queries at once); a list of QueryRuns
    by the per-query reference definitions. Both give the same values."""
    if isinstance(runs, ColumnarRuns):
        return evaluate_columnar(runs, pool, names)
    return evaluate_reference(runs, pool, names)


def evaluate_columnar(columns: ColumnarRuns, pool: PoolInfo,
                      names: Iterable[str | Metric] = DEFAULT_METRICS) -> dict[str, np.ndarray]:
    result: dict[str, np.ndarray] = {}
    for metric in _resolve(names):
        if metric.vectorised is None:  # a metric added without a vectorised form still works, per query
            result.update(evaluate_reference(columns.to_runs(), pool, [metric]))
        else:
            result[metric.name] = np.asarray(metric.vectorised(columns, pool), dtype=float)
    return result


def evaluate_reference(runs: Sequence[QueryRun], pool: PoolInfo,
                       names: Iterable[str | Metric] = DEFAULT_METRICS) -> dict[str, np.ndarray]:
    """The per-query definitions, one run at a time: the reference the vectorised registry is tested against."""
    result: dict[str, np.ndarray] = {}
    for metric in _resolve(names):
        values = np.full(len(runs), np.nan)
        for i, run in enumerate(runs):
            value = metric(run, pool)
            if value is not None:
                values[i] = value
        result[metric.name] = values
    return result


def mean_applicable(values: np.ndarray) -> float | None:
    """Mean over the queries where the metric applies (non-NaN); None if it applies to none."""
    values = np.asarray(values, dtype=float)
    applicable = values[~np.isnan(values)]
    return float(applicable.mean()) if applicable.size else None


def aggregate(per_query: Mapping[str, np.ndarray]) -> dict[str, float | None]:
    """Mean of each metric over the queries where it applies; None where it applies to none."""
    return {name: mean_applicable(values) for name, values in per_query.items()}
