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
from .search.exact import rank_order_presorted

# Score cells (queries x pool) held per batch; a batch keeps three such float32 matrices (scores, a masked
# copy, a sorted copy), so this bounds the transient memory to about 3 x 16 MB whatever the pool size.
MAX_CHUNK_CELLS = 4_000_000


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
    lang_names, lang_codes = np.unique(pool.langs, return_inverse=True)
    lang_cols = [np.flatnonzero(lang_codes == j) for j in range(len(lang_names))]
    lang_sizes = np.array([c.size for c in lang_cols])
    twinned = pool.english_twinned
    twin_cols = [cols[twinned[cols]] for cols in lang_cols]
    twin_sizes = np.array([c.size for c in twin_cols])
    width = max(1, pool.size)
    chunk = max(1, min(chunk, MAX_CHUNK_CELLS // width))
    runs: list[QueryRun] = []
    hits = 0.0
    for start in range(0, len(query_vecs), chunk):
        scores = full_scores(query_vecs[start:start + chunk], doc_vecs)
        n = scores.shape[0]
        for i in range(n):
            if excluded and excluded[start + i].size:
                scores[i, excluded[start + i]] = -np.inf
        ranked = np.sort(scores, axis=1)
        with_nan = np.isnan(scores).any(axis=1)
        exact_top = rank_order(scores, depth) if with_nan.any() else rank_order_presorted(scores, ranked, depth)
        if graph is not None:
            extra = max((e.size for e in excluded[start:start + chunk]), default=0) if excluded else 0
            top, _ = graph.search(query_vecs[start:start + chunk], depth + extra, threads)
            if excluded:
                top = _drop_excluded(top, excluded[start:start + chunk], depth)
            kk = min(k, depth)
            hits += sum(len(np.intersect1d(top[i, :kk], exact_top[i, :kk])) / kk for i in range(len(top)))
        else:
            top = exact_top
        # Best irrelevant document per language for the whole chunk: relevant and excluded documents are
        # masked to -inf, a language with no document left is skipped (counted, not inferred from scores).
        parts = list(relevant[start:start + n]) + (list(excluded[start:start + n]) if excluded else [])
        owner = np.repeat(np.tile(np.arange(n), len(parts) // n), [p.size for p in parts])
        cells = np.unique(owner * width + np.concatenate(parts).astype(np.int64)) if parts else np.empty(0, np.int64)
        hidden_rows, hidden_docs = np.divmod(cells, width)
        masked = scores.copy()
        masked[hidden_rows, hidden_docs] = -np.inf
        n_langs = lang_sizes.size
        left = lang_sizes - np.bincount(hidden_rows * n_langs + lang_codes[hidden_docs],
                                        minlength=n * n_langs).reshape(n, n_langs)
        hidden_twinned = twinned[hidden_docs]
        twin_left = twin_sizes - np.bincount(hidden_rows[hidden_twinned] * n_langs
                                             + lang_codes[hidden_docs[hidden_twinned]],
                                             minlength=n * n_langs).reshape(n, n_langs)
        best_doc = _best_per_column_set(masked, lang_cols)
        best_twin_doc = _best_per_column_set(masked, twin_cols)
        for i in range(n):
            qn = start + i
            row = scores[i]
            rel = relevant[qn]
            present = np.flatnonzero(left[i] > 0)
            twin_present = np.flatnonzero(twin_left[i] > 0)
            targets = np.concatenate([rel, best_doc[i, present], best_twin_doc[i, twin_present]])
            ranks = ranks_of(row, targets) if with_nan[i] else _sorted_ranks(row, ranked[i], targets)
            irr_ranks, twin_ranks = ranks[rel.size:rel.size + present.size], ranks[rel.size + present.size:]
            best_irr = {str(lang_names[j]): int(r) for j, r in zip(present, irr_ranks)}
            best_twin = {str(lang_names[j]): int(r) for j, r in zip(twin_present, twin_ranks)}
            head = _visible(top[i], excluded, qn)
            runs.append(QueryRun(qid=qids[qn], lang=qlangs[qn], top=head, top_scores=row[head],
                                 relevant=rel, relevant_ranks=ranks[:rel.size], relevant_scores=row[rel],
                                 best_irrelevant_rank=best_irr, best_irrelevant_twinned_rank=best_twin,
                                 exact_head=None if graph is None else _visible(exact_top[i], excluded, qn)))
    params: dict[str, Any] = {"depth": depth}
    recall = None
    if graph is not None:
        params.update(M=hnsw.M, ef_construction=hnsw.ef_construction, ef=max(hnsw.ef, depth), seed=hnsw.seed,
                      build_threads=hnsw.build_threads, space="ip")
        recall = hits / max(1, len(query_vecs))
    return RetrievalResult(runs, kind, params, recall)


def _visible(head: np.ndarray, excluded: tuple[np.ndarray, ...], query: int) -> np.ndarray:
    return head[~np.isin(head, excluded[query])] if excluded else head


def _best_per_column_set(masked: np.ndarray, column_sets: list[np.ndarray]) -> np.ndarray:
    """[n, len(column_sets)]: per row, the highest-scoring column of each set (first index among ties; an
    empty set gives -1, and callers only read sets with a document left)."""
    best = np.full((masked.shape[0], len(column_sets)), -1, dtype=np.int64)
    for j, cols in enumerate(column_sets):
        if cols.size:
            best[:, j] = cols[np.argmax(masked[:, cols], axis=1)]
    return best


def _sorted_ranks(row: np.ndarray, ranked: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """`ranks_of(row, docs)` from the row sorted ascending (no NaN): 1 + the number of higher scores, and
    the exact tie-break by pool index only for the rare documents whose score another document shares."""
    s = row[docs]
    right = np.searchsorted(ranked, s, side="right")
    ranks = (ranked.size - right + 1).astype(np.int64)
    tied = right - np.searchsorted(ranked, s, side="left") > 1
    if tied.any():
        ranks[tied] = ranks_of(row, docs[tied])
    return ranks


def _drop_excluded(top: np.ndarray, excluded: tuple[np.ndarray, ...], depth: int) -> np.ndarray:
    """HNSW knows nothing of per-query exclusions: it was asked for a few more, drop them, keep `depth`."""
    width = min(depth, top.shape[1] - max((e.size for e in excluded), default=0))
    out = np.empty((len(top), width), dtype=top.dtype)
    for i, ex in enumerate(excluded):
        out[i] = top[i][~np.isin(top[i], ex)][: out.shape[1]] if ex.size else top[i][: out.shape[1]]
    return out
