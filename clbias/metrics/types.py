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

from ..langs import ENGLISH


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
    def english_twinned(self) -> np.ndarray:
        """bool [N]: a non-English document whose parallel id an English document of this pool shares."""
        english_pids = {pid for pid, lang in zip(self.parallel_ids, self.langs)
                        if pid is not None and str(lang) == ENGLISH}
        return np.array([pid is not None and pid in english_pids and str(lang) != ENGLISH
                         for pid, lang in zip(self.parallel_ids, self.langs)], dtype=bool)

    @cached_property
    def by_parallel_id(self) -> dict[tuple[object, str], list[int]]:
        """(parallel id, language) -> pool indices of the documents with that id in that language."""
        groups: dict[tuple[object, str], list[int]] = {}
        for index, (pid, lang) in enumerate(zip(self.parallel_ids, self.langs)):
            if pid is not None:
                groups.setdefault((pid, str(lang)), []).append(index)
        return groups

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
    # lang -> 1-based rank of the best irrelevant document in that language that has an English twin in the
    # pool (non-English languages only; absent: none left). What neutral EIR compares against.
    best_irrelevant_twinned_rank: dict[str, int] = field(default_factory=dict)
    # The exact head when `top` came from an approximate index (None: `top` is exact). Twin preference reads
    # the head, and search error must not count as bias.
    exact_head: np.ndarray | None = None

    @property
    def head(self) -> np.ndarray:
        return self.top if self.exact_head is None else self.exact_head
