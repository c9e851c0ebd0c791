"""Built-in baselines that users run: BM25 (kind "bm25") and BM25 + dense fused (kind "hybrid").

Both score every document of the pool, so every rank is exact (no censoring). BM25 indexes each pool on its
own (clbias.search.bm25): the statistics are the pool's, as a search engine over that pool would have them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..corpus import passage_text
from ..metrics.types import PoolInfo
from ..report.model import ModelInfo
from ..scenarios import Scenario
from ..search.bm25 import BM25Index, library_versions, tokenize
from ..search.fusion import RRF_K, reciprocal_rank_fusion, weighted_fusion
from ..search.ranking import RetrievalResult
from .base import AuditContext
from .dense import DenseSystem
from .lists import rank_pool_scores

FUSIONS = ("rrf", "weighted")


class BM25System:
    truncation: dict[str, dict[str, Any]] = {}

    def __init__(self, name: str = "bm25", k1: float = 1.5, b: float = 0.75, backend: str = "bm25s") -> None:
        self.k1, self.b, self.backend = k1, b, backend
        self.info = ModelInfo(name=name, kind="bm25", details={"library": backend, "k1": k1, "b": b,
                                                                "variant": "lucene" if backend == "bm25s" else "okapi",
                                                                "tokens": "words; CJK/Thai character bigrams",
                                                                "versions": library_versions()})
        self._doc_tokens: list[list[str]] | None = None
        self._query_tokens: list[list[str]] | None = None
        self._indexes: dict[bytes, BM25Index] = {}

    def prepare(self, ctx: AuditContext) -> list[str]:
        if self._doc_tokens is None:
            self._doc_tokens = [tokenize(passage_text(d)) for d in ctx.corpus.docs]
            self._query_tokens = [tokenize(q.text) for q in ctx.corpus.queries]
        return []

    def scores(self, scenario: Scenario, ctx: AuditContext) -> np.ndarray:
        """[queries, pool] BM25 scores of the scenario, the pool indexed on its own (one index per pool)."""
        assert self._doc_tokens is not None and self._query_tokens is not None
        key = np.ascontiguousarray(scenario.pool, np.int64).tobytes()
        index = self._indexes.get(key)
        if index is None:
            index = BM25Index([self._doc_tokens[i] for i in scenario.pool], self.k1, self.b, self.backend)
            self._indexes = {key: index}  # scenarios come grouped by pool; keep one index alive
        return index.scores([self._query_tokens[i] for i in scenario.queries])

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> RetrievalResult:
        return rank_pool_scores(self.scores(scenario, ctx), scenario, pool, ctx)


class HybridSystem:
    """BM25 and a dense system fused per query over the pool: RRF (default) or a weighted score sum,
    `weight` on BM25 (clbias.search.fusion)."""

    truncation: dict[str, dict[str, Any]] = {}

    def __init__(self, dense: DenseSystem, bm25: BM25System, fusion: str = "rrf", rrf_k: int = RRF_K,
                 weight: float = 0.5, name: str | None = None) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; known: {', '.join(FUSIONS)}")
        self.dense, self.bm25, self.fusion, self.rrf_k, self.weight = dense, bm25, fusion, rrf_k, weight
        params: dict[str, Any] = {"fusion": fusion, **({"rrf_k": rrf_k} if fusion == "rrf" else {"bm25_weight": weight})}
        self.info = ModelInfo(name=name or f"hybrid({bm25.info.name}+{dense.info.name})", kind="hybrid",
                              details={**params, "dense": dense.info.name, "dense_sha256": dense.info.sha256,
                                       "bm25": {k: v for k, v in bm25.info.details.items()}})

    def prepare(self, ctx: AuditContext) -> list[str]:
        notes = [] if self.dense.embedded is not None else self.dense.prepare(ctx)
        self.bm25.prepare(ctx)
        self.info.details["dense"] = self.dense.info.name
        self.info.details["dense_sha256"] = self.dense.info.sha256
        return notes

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> RetrievalResult:
        lexical = self.bm25.scores(scenario, ctx)
        dense = self.dense.score_rows(scenario)
        fused = (reciprocal_rank_fusion(lexical, dense, k=self.rrf_k) if self.fusion == "rrf"
                 else weighted_fusion(lexical, dense, self.weight))
        return rank_pool_scores(fused.astype(np.float32), scenario, pool, ctx)
