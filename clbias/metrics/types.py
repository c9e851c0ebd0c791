"""What the metrics see: one ranked result per query over one pool.

Ranks are 1-based over the whole pool and break score ties by pool index, so every number is
deterministic. `top` is the head of the ranking (what a user would see); the deep quantities a bias
metric needs (the rank of every relevant document, the best rank of an irrelevant document per
language) are exact even when `top` came from an approximate index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class PoolInfo:
    """The documents a scenario searches, by pool index."""

    doc_ids: np.ndarray  # str, [N]
    langs: np.ndarray  # str, [N]
    parallel_ids: np.ndarray  # object (str or None), [N]

    @property
    def size(self) -> int:
        return int(self.doc_ids.shape[0])

    def lang_share(self, lang: str) -> float:
        return self._lang_shares.get(lang, 0.0)

    @cached_property
    def _lang_shares(self) -> dict[str, float]:
        """Share of each language, counted once per pool (metrics ask for it on every query)."""
        langs, counts = np.unique(self.langs, return_counts=True)
        return {str(lang): int(count) / self.size for lang, count in zip(langs, counts)}


@dataclass(frozen=True)
class QueryRun:
    qid: str
    lang: str
    top: np.ndarray  # int pool indices in rank order, [depth]
    top_scores: np.ndarray  # float, [depth]
    relevant: np.ndarray  # int pool indices of the relevant documents (binary relevance), [R]
    relevant_ranks: np.ndarray  # int 1-based ranks over the whole pool, aligned with `relevant`
    relevant_scores: np.ndarray  # float, aligned with `relevant`
    # lang -> 1-based rank of the best-ranked *irrelevant* document in that language (absent: none in pool)
    best_irrelevant_rank: dict[str, int] = field(default_factory=dict)
