"""The retriever seam: every audited system, whatever it is, turns each scenario's pool and queries into
rankings that the metrics read.

A user plugs in a system by writing a class with a `name` and ONE of three methods (docs/retrievers.md):

    rank(docs, queries, depth)    -> {query id: [(doc id, score), ...]}   any system (search engine, reranker)
    score(docs, queries)          -> array [n_queries, n_docs]            a scorer that scores every document
    embed_documents(docs) and embed_queries(queries) -> arrays            a dense embedder (fast exact path)

`docs` and `queries` are `clbias.corpus.Record`s (id, text, lang, parallel_id, title) of ONE pool: the audit
calls the system once per scenario, so pool-dependent behaviour (BM25 statistics, score thresholds, fusion
normalisation) is what the system shows on that pool. Rankings that stop before the end of the pool are
audited with censoring (clbias.search.censored). An optional `kind` attribute names the kind of system in
reports (default "custom").

Built in: `EncoderSystem` (an exported ONNX model, local or Ray engine), `RunFileSystem` (a run file over
the whole corpus), `PoolRunsSystem` (one run file per exported pool), `BM25System` and `HybridSystem`.
"""
from __future__ import annotations

from .base import (AuditContext, Embedder, PoolRanking, Retriever, Scorer, System, as_system,
                   system_labels)
from .builtin import BM25System, HybridSystem
from .dense import EmbedderSystem, EncoderSystem, ShiftedSystem
from .lists import PoolRunsSystem, RankingSystem, RunFileSystem, ScoreSystem

__all__ = ["AuditContext", "BM25System", "HybridSystem", "Embedder", "EmbedderSystem", "EncoderSystem", "PoolRanking", "PoolRunsSystem",
           "RankingSystem", "Retriever", "RunFileSystem", "ScoreSystem", "Scorer", "ShiftedSystem", "System",
           "as_system", "system_labels"]
