"""Turn embeddings of one scenario into ranked runs that the metrics read, as arrays (ColumnarRuns).

The head of each ranking comes from the chosen index (exact or HNSW). The deep quantities that bias
metrics need (rank of every relevant document, best rank of an irrelevant document per language, and of one
with an English twin) are exact: a document in the exact head has its position there, any other its rank by
counting, 1 + the documents scoring higher + those tying with a lower pool index. Nothing sorts a whole row.
With HNSW, the head's recall@k against exact search is measured on every query and reported.

Scores are computed in chunks of queries (at most MAX_CHUNK_CELLS float32 cells at once) and processed in
smaller row blocks (SELECT_CELLS), so memory is bounded whatever the pool size. For the best irrelevant
document per language the row is read in the pool's layout order, (language, has an English twin): each
language, twinned or not, is then a contiguous block whose argmax is one pass (a gather first, unless the
pool is already in that order). Scores themselves are always `queries @ docs.T` in pool order: a matrix
product over permuted documents would round some scores differently.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .metrics.columnar import ColumnarRuns
from .metrics.types import PoolInfo, QueryRun
from .search import HnswIndex, HnswParams, IndexKind, choose_index

MAX_CHUNK_CELLS = 32_000_000  # score cells of one matrix product (128 MB of float32)
SELECT_CELLS = 4_000_000  # score cells whose head and ranks are found together (bounds the temporaries)
_ROW_COUNT_WIDTH = 5_000  # from this row width on, ranks are counted one row at a time (cheaper per pair)
_SORT_TARGETS = 8  # targets per row from which sorting the row beats counting per target (AVX2 measure)
_SAMPLE_RANK = 32  # the head threshold is the _SAMPLE_RANK-th best of a strided sample of the row


@dataclass(frozen=True)
class RetrievalResult:
    columns: ColumnarRuns
    index_kind: str
    index_params: dict[str, Any]
    recall_vs_exact: float | None  # mean recall@k of the HNSW head against exact search

    @cached_property
    def runs(self) -> list[QueryRun]:
        """The runs one QueryRun per query (the per-query reference metrics read these)."""
        return self.columns.to_runs()


@dataclass(frozen=True)
class PoolLayout:
    """The pool sorted by (language, has an English twin), stable."""

    perm: np.ndarray  # layout position -> pool index
    lang_names: np.ndarray  # sorted pool languages
    lang_codes: np.ndarray  # pool index -> language column
    blocks: np.ndarray  # [L, 3]: language j's columns are [start, split) untwinned, [split, stop) twinned
    twinned: np.ndarray  # bool, pool index -> has an English twin in the pool
    identity: bool  # the pool is already in layout order (no gather needed)


def pool_layout(pool: PoolInfo) -> PoolLayout:
    cached = pool.__dict__.get("_retrieval_layout")  # PoolInfo is frozen: cached like its cached_propertys
    if cached is None:
        cached = pool.__dict__["_retrieval_layout"] = _layout(pool)
    return cached


def _layout(pool: PoolInfo) -> PoolLayout:
    names, codes = np.unique(pool.langs.astype(str), return_inverse=True) if pool.size else \
        (np.empty(0, str), np.empty(0, np.int64))
    codes = codes.astype(np.int64).reshape(pool.size)
    twinned = pool.english_twinned.reshape(pool.size)
    perm = np.lexsort((twinned, codes)).astype(np.int64)
    lang_sizes = np.bincount(codes, minlength=names.size)
    twin_sizes = np.bincount(codes[twinned], minlength=names.size)
    stop = np.cumsum(lang_sizes)
    blocks = np.stack([stop - lang_sizes, stop - twin_sizes, stop], axis=1) if names.size else np.empty((0, 3), np.int64)
    identity = bool(np.array_equal(perm, np.arange(perm.size)))
    return PoolLayout(perm, names, codes, blocks.astype(np.int64), twinned, identity)


def retrieve(query_vecs: np.ndarray, doc_vecs: np.ndarray, qids: list[str], qlangs: list[str],
             relevant: tuple[np.ndarray, ...], pool: PoolInfo, depth: int = 100, k: int = 10,
             index: IndexKind = "auto", hnsw: HnswParams = HnswParams(), threads: int = 1,
             excluded: tuple[np.ndarray, ...] = (), chunk_cells: int | None = None) -> RetrievalResult:
    """`excluded[i]`: pool indices that query i must not see (its own source document in label-free
    probes); they are scored -inf, so they rank last and never enter the head of the ranking.

    `chunk_cells` (default MAX_CHUNK_CELLS) sets the rows of each matrix product, `chunk_cells // pool size`;
    BLAS may round a row differently in products of different heights, so callers that split the queries
    themselves (the Ray engine) cut at multiples of that to get the same scores to the bit."""
    kind = choose_index(index, pool.size)
    n_docs = pool.size
    depth = min(depth, n_docs)
    layout = pool_layout(pool)
    graph = HnswIndex.build(doc_vecs, hnsw) if kind == "hnsw" else None
    n = len(query_vecs)
    rel = _padded(relevant, n)
    excl = _padded(excluded, n) if excluded else np.full((n, 0), -1, np.int64)
    n_langs = layout.lang_names.size
    out_top = np.full((n, depth), -1, np.int64)
    out_best = np.zeros((n, n_langs), np.int64)
    out_twin = np.zeros((n, n_langs), np.int64)
    out_rel_ranks = np.zeros(rel.shape, np.int64)
    out_rel_scores = np.full(rel.shape, np.nan, np.float32)
    out_scores = np.full((n, depth), np.nan, np.float32)
    graph_top = np.full((n, depth), -1, np.int64) if graph is not None else None
    graph_scores = np.full((n, depth), np.nan, np.float32) if graph is not None else None
    hits = 0.0
    width = max(1, n_docs)
    cells = MAX_CHUNK_CELLS if chunk_cells is None else chunk_cells
    rows_per_product = product_rows(n_docs, cells)
    rows_per_block = max(1, min(SELECT_CELLS, cells) // width)
    for start in range(0, n, rows_per_product):
        stop = min(n, start + rows_per_product)
        scores = np.asarray(query_vecs[start:stop] @ doc_vecs.T, dtype=np.float32)
        for a in range(0, stop - start, rows_per_block):
            b = min(stop - start, a + rows_per_block)
            q = slice(start + a, start + b)
            block = _ranked_block(scores[a:b], rel[q], excl[q], layout, depth)
            out_top[q], out_scores[q], out_rel_ranks[q], out_rel_scores[q], out_best[q], out_twin[q] = block
        if graph is not None:
            top, top_scores, chunk_hits = _graph_head(graph, query_vecs[start:stop], scores, excl[start:stop],
                                                      out_top[start:stop], depth, k, threads)
            graph_top[start:stop], graph_scores[start:stop] = top, top_scores  # type: ignore[index]  # both arrays exist whenever graph does
            hits += chunk_hits
    visible_top, visible_scores, visible_len = _visible(out_top, out_scores, excl)
    if graph is None:
        top, top_scores, top_len, exact_head, exact_len = visible_top, visible_scores, visible_len, None, None
    else:
        top, top_scores, top_len = _visible(graph_top, graph_scores, excl)  # type: ignore[arg-type]  # likewise: set with graph
        exact_head, exact_len = visible_top, visible_len
    columns = ColumnarRuns(
        qids=list(qids), qlangs=np.array(qlangs, dtype=str).reshape(n), top=top, top_scores=top_scores,
        top_len=top_len, relevant=rel, relevant_ranks=out_rel_ranks, relevant_scores=out_rel_scores,
        n_relevant=np.array([r.size for r in relevant], np.int64).reshape(n), lang_names=layout.lang_names,
        best_irrelevant_rank=out_best, best_irrelevant_twinned_rank=out_twin, exact_head=exact_head,
        exact_head_len=exact_len)
    params: dict[str, Any] = {"depth": depth}
    recall = None
    if graph is not None:
        params.update(M=hnsw.M, ef_construction=hnsw.ef_construction, ef=max(hnsw.ef, depth), seed=hnsw.seed,
                      build_threads=hnsw.build_threads, space="ip")
        recall = hits / max(1, n)
    return RetrievalResult(columns, kind, params, recall)


def product_rows(pool_size: int, chunk_cells: int | None = None) -> int:
    """Queries per matrix product for a pool of this size."""
    return max(1, (MAX_CHUNK_CELLS if chunk_cells is None else chunk_cells) // max(1, pool_size))


def _padded(rows: tuple[np.ndarray, ...], n: int) -> np.ndarray:
    width = max((r.size for r in rows), default=0)
    out = np.full((n, width), -1, np.int64)
    for i, r in enumerate(rows):
        out[i, :r.size] = r
    return out


def _ranked_block(scores: np.ndarray, rel: np.ndarray, excl: np.ndarray, layout: PoolLayout, depth: int
                  ) -> tuple[np.ndarray, ...]:
    """Exact head, relevant ranks and scores, best irrelevant (and twinned) rank per language for a block
    of score rows in pool order. Modifies `scores` (exclusions and NaN become -inf)."""
    n, width = scores.shape
    rows = np.arange(n)
    if excl.size:
        er, ej = np.nonzero(excl >= 0)
        scores[er, excl[er, ej]] = -np.inf
    nan_rows = np.flatnonzero(np.isnan(scores.max(axis=1))) if width else np.empty(0, np.int64)
    for r in nan_rows:  # NaN ranks like -inf: last, ties by pool index
        scores[r, np.isnan(scores[r])] = -np.inf
    rel_valid = rel >= 0
    rr, rj = np.nonzero(rel_valid)
    rel_docs = rel[rr, rj]
    rel_scores = np.full(rel.shape, np.nan, np.float32)
    rel_scores[rr, rj] = scores[rr, rel_docs]
    scores[rr, rel_docs] = -np.inf  # hidden while the best irrelevant documents are chosen
    best, twin = _best_per_language(scores, layout)
    left, twin_left = _left_per_language(rel, excl, layout)
    best[left == 0] = -1
    twin[twin_left == 0] = -1
    _fix_hidden_choices(scores, best, twin, rel, excl, layout)
    scores[rr, rel_docs] = rel_scores[rr, rj]
    head = _exact_head(scores, depth)
    head_scores = scores[rows[:, None], head] if depth else np.empty((n, 0), np.float32)
    ranks = _ranks(scores, np.concatenate([rel, best, twin], axis=1), head)
    n_rel, n_langs = rel.shape[1], layout.lang_names.size
    return (head, head_scores, ranks[:, :n_rel], rel_scores, ranks[:, n_rel:n_rel + n_langs],
            ranks[:, n_rel + n_langs:])


def _best_per_language(scores: np.ndarray, layout: PoolLayout) -> tuple[np.ndarray, np.ndarray]:
    """[n, L] pool index of the best-scoring document of each language, and of each language's twinned
    documents (-1: none); ties go to the lower pool index."""
    n = scores.shape[0]
    rows = np.arange(n)
    perm = layout.perm
    view = scores if layout.identity else np.take(scores, perm, axis=1)
    n_langs = layout.lang_names.size
    best = np.full((n, n_langs), -1, np.int64)
    twin = np.full((n, n_langs), -1, np.int64)
    for j, (lo, split, hi) in enumerate(layout.blocks):
        plain = perm[_block_argmax(view, lo, split) + lo] if split > lo else None
        twinned = perm[_block_argmax(view, split, hi) + split] if hi > split else None
        if twinned is not None:
            twin[:, j] = twinned
        if plain is None or twinned is None:
            only = plain if twinned is None else twinned
            assert only is not None  # a language block is never empty on both sides
            best[:, j] = only
        else:
            sp, st = scores[rows, plain], scores[rows, twinned]
            best[:, j] = np.where((st > sp) | ((st == sp) & (twinned < plain)), twinned, plain)
    return best, twin


def _block_argmax(view: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Per row, argmax of view[:, lo:hi] (first among ties). On wide rows one contiguous row slice at a time
    is ~3x faster than numpy's reduction over a strided column block."""
    if view.shape[1] >= _ROW_COUNT_WIDTH:
        return np.fromiter((row[lo:hi].argmax() for row in view), dtype=np.int64, count=view.shape[0])
    return view[:, lo:hi].argmax(axis=1)


def _fix_hidden_choices(scores: np.ndarray, best: np.ndarray, twin: np.ndarray, rel: np.ndarray,
                        excl: np.ndarray, layout: PoolLayout) -> None:
    """An argmax lands on a hidden (relevant or excluded, scored -inf) document only when every document
    left in its block scores -inf too (degenerate rows); choose among the ones left, lowest pool index."""
    hidden = np.concatenate([rel, excl], axis=1)
    for chosen, twinned_only in ((best, False), (twin, True)):
        bad = (chosen >= 0) & (chosen[:, :, None] == hidden[:, None, :]).any(axis=2)
        for r, j in zip(*np.nonzero(bad)):
            lo, split, hi = layout.blocks[j]
            docs = np.sort(layout.perm[(split if twinned_only else lo):hi])
            docs = docs[~np.isin(docs, hidden[r])]
            row = scores[r, docs]
            chosen[r, j] = docs[np.argmax(row)]


def _left_per_language(rel: np.ndarray, excl: np.ndarray, layout: PoolLayout) -> tuple[np.ndarray, np.ndarray]:
    """[n, L] documents per language that are neither relevant nor excluded (all, and twinned only)."""
    n = rel.shape[0]
    n_langs = layout.lang_names.size
    hidden = np.concatenate([rel, excl], axis=1)
    hr, hj = np.nonzero(hidden >= 0)
    size = max(1, layout.perm.size)
    cells = np.unique(hr.astype(np.int64) * size + hidden[hr, hj])
    h_rows, h_docs = np.divmod(cells, size)
    codes = layout.lang_codes[h_docs]
    sizes = np.diff(layout.blocks[:, [0, 2]], axis=1)[:, 0] if n_langs else np.empty(0, np.int64)
    twin_sizes = layout.blocks[:, 2] - layout.blocks[:, 1] if n_langs else np.empty(0, np.int64)
    gone = np.bincount(h_rows * n_langs + codes, minlength=n * n_langs).reshape(n, n_langs)
    tw = layout.twinned[h_docs]
    twin_gone = np.bincount(h_rows[tw] * n_langs + codes[tw], minlength=n * n_langs).reshape(n, n_langs)
    return sizes - gone, twin_sizes - twin_gone


def _exact_head(scores: np.ndarray, depth: int) -> np.ndarray:
    """[n, depth] pool indices of the best `depth` scores per row, best first, ties by pool index.

    A threshold t with at least `depth` scores >= t per row makes the candidates; the head is exact
    whatever t is. t is the _SAMPLE_RANK-th best of every g-th score, so about 3 x depth candidates."""
    n, width = scores.shape
    if depth == 0 or n == 0:
        return np.empty((n, depth), np.int64)
    stride = max(1, (3 * depth) // _SAMPLE_RANK)
    if width <= 16 * depth or width // stride < 2 * _SAMPLE_RANK:
        short = np.arange(n)
        flat = np.empty(0, np.int64)
    else:
        sample = scores[:, ::stride]
        kth = sample.shape[1] - _SAMPLE_RANK
        threshold = np.partition(sample, kth, axis=1)[:, kth]
        flat = np.flatnonzero(scores >= threshold[:, None])  # 2-D np.nonzero is ~50x slower than this
        short = np.flatnonzero(np.bincount(flat // width, minlength=n) < depth)
        if short.size:  # a threshold too high for this row (ties, odd samples): every column is a candidate
            flat = flat[~np.isin(flat // width, short)]
    if short.size:
        flat = np.concatenate([flat, (short[:, None] * width + np.arange(width)).ravel()])
    # One sort of uint64 keys (row, score descending, column): rows * 2^32 * width fits in 64 bits because a
    # block holds at most SELECT_CELLS (< 2^31) cells; much faster than a three-key lexsort.
    r = flat // width
    key = ((r.astype(np.uint64) << np.uint64(32)) | _descending_key(scores.ravel()[flat])) * np.uint64(width) \
        + (flat - r * width).astype(np.uint64)
    key.sort()
    r = (key // np.uint64(width)) >> np.uint64(32)
    c = (key % np.uint64(width)).astype(np.int64)
    starts = np.searchsorted(r, np.arange(n, dtype=np.uint64))
    return c[starts[:, None] + np.arange(depth)]


def _descending_key(values: np.ndarray) -> np.ndarray:
    """uint64 keys that sort float32 scores from highest to lowest (equal scores, -0.0 and 0.0 too, get
    equal keys; no NaN here)."""
    bits = (values.astype(np.float32) + np.float32(0.0)).view(np.uint32)
    ascending = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return (np.uint32(0xFFFFFFFF) - ascending).astype(np.uint64)


def _ranks(scores: np.ndarray, targets: np.ndarray, head: np.ndarray) -> np.ndarray:
    """1-based ranks of target documents (-1 = none, rank 0): the position in the exact head when there,
    else 1 + #higher + #tied with a lower pool index, counted over the row."""
    n, n_targets = targets.shape
    ranks = np.zeros((n, n_targets), np.int64)
    if n_targets == 0:
        return ranks
    valid = targets >= 0
    in_head = np.zeros_like(valid)
    width = max(1, scores.shape[1])
    if head.shape[1]:
        cells = (np.arange(n)[:, None] * width + head).ravel()
        order = np.argsort(cells, kind="stable")
        probe = (np.arange(n)[:, None] * width + np.maximum(targets, 0)).ravel()
        at = np.minimum(np.searchsorted(cells[order], probe), cells.size - 1)
        in_head = (cells[order][at] == probe).reshape(n, n_targets) & valid
        ranks[in_head] = (order[at] % head.shape[1]).reshape(n, n_targets)[in_head] + 1
    need = valid & ~in_head
    values = scores[np.arange(n)[:, None], np.maximum(targets, 0)]
    busy = np.flatnonzero(need.any(axis=1))
    if busy.size and need.sum() >= _SORT_TARGETS * busy.size:
        # Many targets per row: one (SIMD) sort of each row, then two binary searches per target, costs less
        # than two counting passes per target.
        ordered = np.sort(scores[busy], axis=1)
        width = scores.shape[1]
        for i, r in enumerate(busy):
            js = np.flatnonzero(need[r])
            s = values[r, js]
            higher = width - np.searchsorted(ordered[i], s, side="right")
            equal = width - np.searchsorted(ordered[i], s, side="left") - higher
            ranks[r, js] = 1 + higher
            for t in np.flatnonzero(equal > 1):
                ranks[r, js[t]] = _count_rank(scores[r], values[r, js[t]], targets[r, js[t]])
        return ranks
    if scores.shape[1] >= _ROW_COUNT_WIDTH:  # 1-D count_nonzero is twice as fast as counting along an axis
        for r in busy:
            js = np.flatnonzero(need[r])
            if js.size < 3:
                for j in js:
                    ranks[r, j] = _count_rank(scores[r], values[r, j], targets[r, j])
                continue
            s = values[r, js][:, None]  # several targets of one row: one call, no per-target overhead
            higher = np.count_nonzero(scores[r][None, :] > s, axis=1)
            equal = np.count_nonzero(scores[r][None, :] >= s, axis=1) - higher
            ranks[r, js] = 1 + higher
            for t in np.flatnonzero(equal > 1):
                ranks[r, js[t]] = _count_rank(scores[r], values[r, js[t]], targets[r, js[t]])
        return ranks
    for j in np.flatnonzero(need.any(axis=0)):
        rows = np.flatnonzero(need[:, j])
        block = scores if rows.size == n else scores[rows]
        s = values[rows, j][:, None]
        higher = np.count_nonzero(block > s, axis=1)
        equal = np.count_nonzero(block >= s, axis=1) - higher
        ranks[rows, j] = 1 + higher
        for t in np.flatnonzero(equal > 1):  # rare: other documents share this score exactly
            ranks[rows[t], j] = _count_rank(block[t], s[t, 0], targets[rows[t], j])
    return ranks


def _count_rank(row: np.ndarray, score: float, doc: int) -> int:
    """1 + #higher + #equal with a lower pool index."""
    higher = np.count_nonzero(row > score)
    if np.count_nonzero(row >= score) - higher > 1:
        return 1 + higher + int(np.count_nonzero(row[:doc] == score))
    return 1 + higher


def _graph_head(graph: HnswIndex, queries: np.ndarray, scores: np.ndarray, excl: np.ndarray,
                exact_top: np.ndarray, depth: int, k: int, threads: int
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """The head from the graph (pool indices, exact scores), excluded documents dropped, and the summed
    recall@k of each query's graph head against its exact head."""
    extra = int((excl >= 0).sum(axis=1).max(initial=0))
    labels, _ = graph.search(queries, depth + extra, threads)
    n = len(queries)
    top = np.full((n, depth), -1, np.int64)
    top_scores = np.full((n, depth), np.nan, np.float32)
    kk = min(k, depth)
    hits = 0.0
    for i in range(n):
        docs = labels[i]
        ex = excl[i][excl[i] >= 0]
        if ex.size:
            docs = docs[~np.isin(docs, ex)]
        docs = docs[:depth]
        top[i, :docs.size] = docs
        top_scores[i, :docs.size] = scores[i, docs]
        if kk:
            hits += len(np.intersect1d(docs[:kk], exact_top[i, :kk])) / kk
    return top, top_scores, hits


def _visible(top: np.ndarray, top_scores: np.ndarray, excl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heads without the excluded documents (and without padding), compacted to the left."""
    keep = top >= 0
    if excl.size:
        keep &= ~((top[:, :, None] == excl[:, None, :]) & (excl[:, None, :] >= 0)).any(axis=2)
    order = np.argsort(~keep, axis=1, kind="stable")
    length = keep.sum(axis=1)
    inside = np.arange(top.shape[1])[None, :] < length[:, None]
    out = np.where(inside, np.take_along_axis(top, order, axis=1), -1)
    out_scores = np.where(inside, np.take_along_axis(top_scores, order, axis=1), np.nan).astype(np.float32)
    return out, out_scores, length.astype(np.int64)
