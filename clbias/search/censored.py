"""Rankings that stop at a depth (run files, a system's top-k): exact where the ranks are known, bounds beyond.

A query's known ranking covers the pool documents the system returned, best first. Any other pool document
ranks somewhere after them, in an unknown order. Every metric is computed on COMPLETIONS of the ranking:
the known head followed by the unknown documents in one of four orders (relevant first or last, times
English first or last; pool order within each group). A metric is exact for a query when all completions
give the same value, else the query is censored and the smallest and largest value are its bounds.

The bounds are the true extremes for metrics that only get better as relevant documents move up (Max@R,
Max@R_norm, Complete/nDCG/Recall/MRR@k) and for EIR and neutral EIR (an irrelevant document outranks the
best relevant one in some completion iff it does when every unknown irrelevant document comes first). For
twin preference and English exposure they bracket the values of the completions that put every unknown
English (or every unknown non-English) document first, the orders that push these metrics furthest.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..langs import ENGLISH
from ..metrics.types import PoolInfo
from .ranking import RetrievalResult, ScoreRows, rank_scores

# (relevant first?, English first?) of each completion
COMPLETIONS = ((True, True), (True, False), (False, True), (False, False))
_MAX_POOL = 1 << 23  # synthetic scores 2N - position must be exact in float32


@dataclass(frozen=True)
class KnownRankings:
    """What the system returned for one scenario: per query, pool indices best first, and their scores."""

    docs: Sequence[np.ndarray]
    scores: Sequence[np.ndarray]

    def head(self, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(top [n, depth] pool indices padded -1, scores padded NaN, lengths) of the known rankings."""
        n = len(self.docs)
        top = np.full((n, depth), -1, np.int64)
        scores = np.full((n, depth), np.nan, np.float32)
        lengths = np.zeros(n, np.int64)
        for i, (d, s) in enumerate(zip(self.docs, self.scores)):
            m = min(depth, d.size)
            top[i, :m], scores[i, :m], lengths[i] = d[:m], s[:m], m
        return top, scores, lengths


@dataclass(frozen=True)
class CensoredResult:
    completions: list[RetrievalResult]  # one per COMPLETIONS entry
    known: KnownRankings
    known_len: np.ndarray  # int64 [n]: pool documents the system ranked for each query
    pool_size: int


def rank_known(known: KnownRankings, qids: list[str], qlangs: list[str], relevant: tuple[np.ndarray, ...],
               pool: PoolInfo, depth: int = 100, k: int = 10,
               excluded: tuple[np.ndarray, ...] = ()) -> RetrievalResult | CensoredResult:
    """Exact columns when every query ranked the whole pool (bar its excluded documents), else the columns
    of every completion. The rankings must hold distinct pool indices."""
    n, size = len(known.docs), pool.size
    if size >= _MAX_POOL:
        raise ValueError(f"pools of {size} documents are too large for ranked-list scoring")
    lengths = np.array([d.size for d in known.docs], np.int64)
    covered = [np.union1d(d, excluded[i]).size if excluded else d.size for i, d in enumerate(known.docs)]
    english = pool.langs == ENGLISH

    def rows(relevant_first: bool, english_first: bool) -> ScoreRows:
        def score_rows(a: int, b: int) -> np.ndarray:
            out = np.empty((b - a, size), np.float32)
            for r, i in enumerate(range(a, b)):
                out[r] = _completed_scores(known.docs[i], relevant[i], english, relevant_first, english_first)
            return out
        return score_rows

    if all(c >= size for c in covered):  # every rank known: exact, with the system's own scores
        return _with_real_scores(rank_scores(rows(True, True), n, qids, qlangs, relevant, pool, depth, k, excluded),
                                 known, size)
    completions = [rank_scores(rows(rf, ef), n, qids, qlangs, relevant, pool, depth, k, excluded)
                   for rf, ef in COMPLETIONS]
    return CensoredResult(completions, known, lengths, size)


def _with_real_scores(result: RetrievalResult, known: KnownRankings, size: int) -> RetrievalResult:
    """The ranking of `result` (made from rank positions, which keep the run's order exactly) with the scores
    the system gave (score metrics and TREC output read them)."""
    c = result.columns
    top_scores = np.full(c.top.shape, np.nan, np.float32)
    rel_scores = np.full(c.relevant.shape, np.nan, np.float32)
    for i, (docs, scores) in enumerate(zip(known.docs, known.scores)):
        row = np.full(size, np.nan, np.float32)
        row[docs] = scores
        top_scores[i] = np.where(c.top[i] >= 0, row[np.maximum(c.top[i], 0)], np.nan)
        rel_scores[i] = np.where(c.relevant[i] >= 0, row[np.maximum(c.relevant[i], 0)], np.nan)
    return replace(result, columns=replace(c, top_scores=top_scores, relevant_scores=rel_scores))


def _completed_scores(docs: np.ndarray, relevant: np.ndarray, english: np.ndarray, relevant_first: bool,
                      english_first: bool) -> np.ndarray:
    """Scores that rank `docs` first in their order, then the other pool documents grouped by (relevance,
    English) in the completion's order, by pool index within a group. Integers, exact in float32."""
    size = english.size
    known = np.zeros(size, bool)
    known[docs] = True
    is_rel = np.zeros(size, bool)
    is_rel[relevant] = True
    group = np.where(is_rel == relevant_first, 0, 2) + np.where(english == english_first, 0, 1)
    unknown = np.flatnonzero(~known)
    order = unknown[np.argsort(group[unknown], kind="stable")]  # stable: pool order within a group
    scores = np.empty(size, np.float32)
    scores[docs] = 2 * size - np.arange(docs.size)
    scores[order] = size - np.arange(order.size)
    return scores
