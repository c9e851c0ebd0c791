"""Turn embeddings of one scenario into ranked runs that the metrics read.

The head of each ranking comes from the chosen index (exact or HNSW). The deep quantities that bias
metrics need (rank of every relevant document, best rank of an irrelevant document per language) are
computed exactly from the full score row, so approximate search can never show up as model bias; with
HNSW, its recall@k against exact search is measured on every query and reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics.types import PoolInfo, QueryRun
from .search import HnswIndex, HnswParams, IndexKind, choose_index, full_scores, rank_order, ranks_of


@dataclass(frozen=True)
class RetrievalResult:
    runs: list[QueryRun]
    index_kind: str
    index_params: dict[str, Any]
    recall_vs_exact: float | None  # mean recall@k of the HNSW head against exact search


def retrieve(query_vecs: np.ndarray, doc_vecs: np.ndarray, qids: list[str], qlangs: list[str],
             relevant: tuple[np.ndarray, ...], pool: PoolInfo, depth: int = 100, k: int = 10,
             index: IndexKind = "auto", hnsw: HnswParams = HnswParams(), chunk: int = 256,
             threads: int = 1, excluded: tuple[np.ndarray, ...] = ()) -> RetrievalResult:
    """`excluded[i]`: pool indices that query i must not see (its own source document in label-free
    probes); they are scored -inf, so they rank last and never enter the head of the ranking."""
    kind = choose_index(index, pool.size)
    depth = min(depth, pool.size)
    graph = HnswIndex.build(doc_vecs, hnsw) if kind == "hnsw" else None
    langs = pool.langs
    lang_masks = {lang: langs == lang for lang in np.unique(langs)}
    runs: list[QueryRun] = []
    hits = 0.0
    for start in range(0, len(query_vecs), chunk):
        scores = full_scores(query_vecs[start:start + chunk], doc_vecs)
        for i in range(scores.shape[0]):
            if excluded and excluded[start + i].size:
                scores[i, excluded[start + i]] = -np.inf
        exact_top = rank_order(scores, depth)
        if graph is not None:
            extra = max((e.size for e in excluded[start:start + chunk]), default=0) if excluded else 0
            top, _ = graph.search(query_vecs[start:start + chunk], depth + extra, threads)
            if excluded:
                top = _drop_excluded(top, excluded[start:start + chunk], depth)
            kk = min(k, depth)
            hits += sum(len(np.intersect1d(top[i, :kk], exact_top[i, :kk])) / kk for i in range(len(top)))
        else:
            top = exact_top
        for i in range(scores.shape[0]):
            qn = start + i
            row = scores[i]
            rel = relevant[qn]
            irrelevant = np.ones(pool.size, dtype=bool)
            irrelevant[rel] = False
            if excluded:
                irrelevant[excluded[qn]] = False
            best_irr: dict[str, int] = {}
            for lang, mask in lang_masks.items():
                candidates = np.flatnonzero(mask & irrelevant)
                if candidates.size:
                    best = candidates[np.argmax(row[candidates])]  # first index among ties
                    best_irr[str(lang)] = int(ranks_of(row, np.array([best]))[0])
            head = top[i][~np.isin(top[i], excluded[qn])] if excluded else top[i]
            runs.append(QueryRun(qid=qids[qn], lang=qlangs[qn], top=head, top_scores=row[head],
                                 relevant=rel, relevant_ranks=ranks_of(row, rel), relevant_scores=row[rel],
                                 best_irrelevant_rank=best_irr))
    params: dict[str, Any] = {"depth": depth}
    recall = None
    if graph is not None:
        params.update(M=hnsw.M, ef_construction=hnsw.ef_construction, ef=max(hnsw.ef, depth), seed=hnsw.seed,
                      build_threads=hnsw.build_threads, space="ip")
        recall = hits / max(1, len(query_vecs))
    return RetrievalResult(runs, kind, params, recall)


def _drop_excluded(top: np.ndarray, excluded: tuple[np.ndarray, ...], depth: int) -> np.ndarray:
    """HNSW knows nothing of per-query exclusions: it was asked for a few more, drop them, keep `depth`."""
    width = min(depth, top.shape[1] - max((e.size for e in excluded), default=0))
    out = np.empty((len(top), width), dtype=top.dtype)
    for i, ex in enumerate(excluded):
        out[i] = top[i][~np.isin(top[i], ex)][: out.shape[1]] if ex.size else top[i][: out.shape[1]]
    return out
