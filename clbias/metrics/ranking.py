"""Per-query ranking metrics: how deep the relevant set sits, and the standard IR measures.

Every function reads the exact 1-based ranks in `QueryRun.relevant_ranks`, never the head `top`, so
an approximate index cannot leak search error into a model's numbers. A query with no relevant
document is unjudged (trec_eval skips it): every function here returns None for it.

Scale: Complete@k, nDCG@k, Recall@k, MRR@k and Max@R_norm are in points (0-100), as in the paper's
tables; ranx / ir_measures / trec_eval report nDCG, Recall and MRR in 0-1, i.e. ours / 100.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .types import PoolInfo, QueryRun


def max_rank(run: QueryRun, pool: PoolInfo) -> float | None:
    """Max@R: the rank one must read down to in order to have seen every relevant document."""
    if run.relevant_ranks.size == 0:
        return None
    return float(run.relevant_ranks.max())


def max_rank_norm(run: QueryRun, pool: PoolInfo) -> float | None:
    """Max@R on a log scale, 100 = the relevant set fills the top, 0 = the last relevant is last.

    When the relevant set is the whole pool (|R| == |D|) every ranking is perfect, so the value is 100.
    """
    n_relevant = int(run.relevant_ranks.size)
    if n_relevant == 0:
        return None
    pool_size = max(pool.size, n_relevant)
    if pool_size == n_relevant:
        return 100.0
    deepest = float(np.clip(run.relevant_ranks.max(), n_relevant, pool_size))
    span = np.log2(pool_size) - np.log2(n_relevant)
    return float(100.0 * (np.log2(pool_size) - np.log2(deepest)) / span)


def complete_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """Complete@k: 100 when every relevant document is in the top k, else 0."""
    if run.relevant_ranks.size == 0:
        return None
    return 100.0 if int(run.relevant_ranks.max()) <= k else 0.0


def ndcg_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """Binary-relevance nDCG@k (gain 1, discount log2(rank + 1), ideal over min(|R|, k)), in points."""
    n_relevant = int(run.relevant_ranks.size)
    if n_relevant == 0:
        return None
    hits = run.relevant_ranks[run.relevant_ranks <= k].astype(float)
    dcg = float(np.sum(1.0 / np.log2(hits + 1.0)))
    ideal_ranks = np.arange(1, min(n_relevant, k) + 1, dtype=float)
    ideal = float(np.sum(1.0 / np.log2(ideal_ranks + 1.0)))
    return 100.0 * dcg / ideal


def recall_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """Recall@k = |relevant in top k| / |R|, in points."""
    n_relevant = int(run.relevant_ranks.size)
    if n_relevant == 0:
        return None
    return 100.0 * float(np.count_nonzero(run.relevant_ranks <= k)) / n_relevant


def mrr_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """Reciprocal rank of the first relevant document if it is in the top k, else 0; in points."""
    if run.relevant_ranks.size == 0:
        return None
    first = int(run.relevant_ranks.min())
    return 100.0 / first if first <= k else 0.0


def query_run_from_scores(qid: str, lang: str, scores: np.ndarray, relevant: Sequence[int] | np.ndarray,
                          pool: PoolInfo, depth: int = 100) -> QueryRun:
    """Build a QueryRun from one score per pool document (exact search), ties broken by pool index."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (pool.size,):
        raise ValueError(f"expected {pool.size} scores, got shape {scores.shape}")
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(pool.size, dtype=np.int64)
    ranks[order] = np.arange(1, pool.size + 1)
    relevant_idx = np.unique(np.asarray(relevant, dtype=np.int64))
    is_irrelevant = np.ones(pool.size, dtype=bool)
    is_irrelevant[relevant_idx] = False
    best_irrelevant_rank: dict[str, int] = {}
    for doc_lang in np.unique(pool.langs[is_irrelevant]):
        in_lang = is_irrelevant & (pool.langs == doc_lang)
        best_irrelevant_rank[str(doc_lang)] = int(ranks[in_lang].min())
    twinned = is_irrelevant & pool.english_twinned
    best_irrelevant_twinned_rank = {str(doc_lang): int(ranks[twinned & (pool.langs == doc_lang)].min())
                                    for doc_lang in np.unique(pool.langs[twinned])}
    top = order[:depth]
    return QueryRun(qid=qid, lang=lang, top=top, top_scores=scores[top], relevant=relevant_idx,
                    relevant_ranks=ranks[relevant_idx], relevant_scores=scores[relevant_idx],
                    best_irrelevant_rank=best_irrelevant_rank,
                    best_irrelevant_twinned_rank=best_irrelevant_twinned_rank)
