"""Metrics for English bias in mixed-language pools, with bootstrap uncertainty over queries."""
from .ranking import query_run_from_scores
from .registry import (DEFAULT_METRICS, FIXED_METRICS, METRIC_FAMILIES, Direction, Metric, MetricFamily,
                       aggregate, available_metrics, evaluate, get_metric, mean_applicable)
from .stats import (CellDecision, Estimate, LanguageGap, PairedComparison, bootstrap_ci, equivalent,
                    holm_significant, language_gap, non_inferior, paired_comparison, significant, significant_loss, summarize)
from .types import PoolInfo, QueryRun

__all__ = [
    "CellDecision", "DEFAULT_METRICS", "FIXED_METRICS", "METRIC_FAMILIES", "Direction", "Estimate", "LanguageGap", "Metric",
    "MetricFamily", "PairedComparison", "PoolInfo", "QueryRun", "aggregate", "available_metrics",
    "bootstrap_ci", "equivalent", "evaluate", "get_metric", "language_gap", "mean_applicable", "paired_comparison",
    "holm_significant", "non_inferior", "query_run_from_scores", "significant", "significant_loss", "summarize",
]
