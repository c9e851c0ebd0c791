"""One scenario's runs as arrays, and every registry metric as a vectorised function over them.

`ColumnarRuns` holds what a list of `QueryRun`s holds, as `[n_queries, ...]` arrays padded per row (heads and
relevant sets differ in length). The functions here compute, for all queries at once, exactly the values
the per-query definitions in ranking.py and bias.py give (those stay the reference; tests/test_columnar.py
proves them equal on random and hand-made runs, ties included). Sums and means that feed a float result
are taken over the same elements in the same order as the reference, so the values agree to the bit.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..langs import ENGLISH
from .types import PoolInfo, QueryRun

NAN = np.nan
_SAME, _EN, _OTHER = 0, 1, 2
_CLASS = {"same": _SAME, "en": _EN, "other": _OTHER}


@dataclass(frozen=True)
class ColumnarRuns:
    """Runs of one scenario over one pool. Padding: -1 for pool indices, 0 for ranks, NaN for scores."""

    qids: list[str]
    qlangs: np.ndarray  # str [n]
    top: np.ndarray  # int64 [n, depth], the head from the index
    top_scores: np.ndarray  # float32 [n, depth]
    top_len: np.ndarray  # int64 [n]
    relevant: np.ndarray  # int64 [n, R], in the order the caller gave them
    relevant_ranks: np.ndarray  # int64 [n, R], exact 1-based ranks over the pool
    relevant_scores: np.ndarray  # float32 [n, R]
    n_relevant: np.ndarray  # int64 [n]
    lang_names: np.ndarray  # str [L]: the languages the rank columns below refer to
    best_irrelevant_rank: np.ndarray  # int64 [n, L]; 0 = no irrelevant document of that language left
    best_irrelevant_twinned_rank: np.ndarray  # int64 [n, L]; 0 = none left
    exact_head: np.ndarray | None = None  # int64 [n, depth] when `top` came from an approximate index
    exact_head_len: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.qids)

    @property
    def head(self) -> np.ndarray:
        return self.top if self.exact_head is None else self.exact_head

    @property
    def head_len(self) -> np.ndarray:
        return self.top_len if self.exact_head_len is None else self.exact_head_len

    def run(self, i: int) -> QueryRun:
        n_rel, n_top = int(self.n_relevant[i]), int(self.top_len[i])
        best = {str(self.lang_names[j]): int(r) for j, r in enumerate(self.best_irrelevant_rank[i]) if r > 0}
        twin = {str(self.lang_names[j]): int(r) for j, r in enumerate(self.best_irrelevant_twinned_rank[i]) if r > 0}
        exact = None if self.exact_head is None else self.exact_head[i, :int(self.exact_head_len[i])]  # type: ignore[index]  # exact_head_len is set whenever exact_head is
        return QueryRun(qid=self.qids[i], lang=str(self.qlangs[i]), top=self.top[i, :n_top],
                        top_scores=self.top_scores[i, :n_top], relevant=self.relevant[i, :n_rel],
                        relevant_ranks=self.relevant_ranks[i, :n_rel], relevant_scores=self.relevant_scores[i, :n_rel],
                        best_irrelevant_rank=best, best_irrelevant_twinned_rank=twin, exact_head=exact)

    def to_runs(self) -> list[QueryRun]:
        return [self.run(i) for i in range(self.size)]

    @classmethod
    def from_runs(cls, runs: Sequence[QueryRun], pool: PoolInfo) -> "ColumnarRuns":
        """The arrays of hand-made or reference runs (tests, and callers that build QueryRuns themselves)."""
        n = len(runs)
        names = sorted({str(x) for x in np.unique(pool.langs)} | {k for r in runs for k in r.best_irrelevant_rank}
                       | {k for r in runs for k in r.best_irrelevant_twinned_rank})
        col = {name: j for j, name in enumerate(names)}
        depth = max((r.top.size for r in runs), default=0)
        width = max((r.relevant.size for r in runs), default=0)
        top, top_scores, top_len = _pad([r.top for r in runs], depth, -1, np.int64), \
            _pad([r.top_scores for r in runs], depth, NAN, np.float32), np.array([r.top.size for r in runs], np.int64)
        best = np.zeros((n, len(names)), np.int64)
        twin = np.zeros((n, len(names)), np.int64)
        for i, r in enumerate(runs):
            for lang, rank in r.best_irrelevant_rank.items():
                best[i, col[lang]] = rank
            for lang, rank in r.best_irrelevant_twinned_rank.items():
                twin[i, col[lang]] = rank
        exact = exact_len = None
        if any(r.exact_head is not None for r in runs):
            heads = [r.head for r in runs]
            exact = _pad(heads, max(h.size for h in heads), -1, np.int64)
            exact_len = np.array([h.size for h in heads], np.int64)
        return cls(qids=[r.qid for r in runs], qlangs=np.array([r.lang for r in runs], dtype=str).reshape(n),
                   top=top, top_scores=top_scores, top_len=top_len,
                   relevant=_pad([r.relevant for r in runs], width, -1, np.int64),
                   relevant_ranks=_pad([r.relevant_ranks for r in runs], width, 0, np.int64),
                   relevant_scores=_pad([r.relevant_scores for r in runs], width, NAN, np.float32),
                   n_relevant=np.array([r.relevant.size for r in runs], np.int64),
                   lang_names=np.array(names, dtype=str).reshape(len(names)), best_irrelevant_rank=best,
                   best_irrelevant_twinned_rank=twin, exact_head=exact, exact_head_len=exact_len)

    @classmethod
    def concat(cls, parts: Sequence["ColumnarRuns"]) -> "ColumnarRuns":
        """The runs of several query chunks of one pool, in order (padding widened to the widest part)."""
        def stack(name: str, fill: float) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            width = max(a.shape[1] for a in arrays)
            return np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)
                                   for a in arrays])

        first = parts[0]
        exact = None if first.exact_head is None else stack("exact_head", -1)
        return cls(qids=[q for p in parts for q in p.qids], qlangs=np.concatenate([p.qlangs for p in parts]),
                   top=stack("top", -1), top_scores=stack("top_scores", NAN),
                   top_len=np.concatenate([p.top_len for p in parts]), relevant=stack("relevant", -1),
                   relevant_ranks=stack("relevant_ranks", 0), relevant_scores=stack("relevant_scores", NAN),
                   n_relevant=np.concatenate([p.n_relevant for p in parts]), lang_names=first.lang_names,
                   best_irrelevant_rank=np.concatenate([p.best_irrelevant_rank for p in parts]),
                   best_irrelevant_twinned_rank=np.concatenate([p.best_irrelevant_twinned_rank for p in parts]),
                   exact_head=exact, exact_head_len=None if exact is None else
                   np.concatenate([p.exact_head_len for p in parts]))

    @cached_property
    def relevant_mask(self) -> np.ndarray:
        return np.arange(self.relevant.shape[1])[None, :] < self.n_relevant[:, None]

    def lang_column(self, lang: str | np.ndarray) -> np.ndarray:
        """Column of `lang` (or of each query's language) in the rank matrices; -1 where absent."""
        langs = np.atleast_1d(np.asarray(lang, dtype=str))
        pos = np.searchsorted(self.lang_names, langs) if self.lang_names.size else np.zeros(langs.size, np.int64)
        pos = np.minimum(pos, max(0, self.lang_names.size - 1))
        found = self.lang_names.size > 0
        ok = (self.lang_names[pos] == langs) if found else np.zeros(langs.size, bool)
        return np.where(ok, pos, -1)


def _pad(rows: Sequence[np.ndarray], width: int, fill: float, dtype: type) -> np.ndarray:
    out: np.ndarray = np.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, :row.size] = row
    return out


def exact_row_reduce(values: np.ndarray, mask: np.ndarray, how: str = "sum") -> tuple[np.ndarray, np.ndarray]:
    """Per row, `np.sum` (or `np.mean`) of `values[i][mask[i]]` taken as a 1-D array, to the bit: rows are
    grouped by their element count and each group reduced along its contiguous last axis, which numpy sums
    exactly as it sums one 1-D array of that length. Returns (result, count); rows with no element give 0."""
    counts = mask.sum(axis=1)
    out = np.zeros(values.shape[0])
    for c in np.unique(counts):
        if c == 0:
            continue
        rows = np.flatnonzero(counts == c)
        block = np.ascontiguousarray(values[rows][mask[rows]].reshape(rows.size, int(c)), dtype=float)
        out[rows] = block.mean(axis=1) if how == "mean" else block.sum(axis=1)
    return out, counts


# ---- ranking metrics (ranking.py) ----

def max_rank(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    judged = c.n_relevant > 0
    deepest = c.relevant_ranks.max(axis=1, initial=0).astype(float)
    return np.where(judged, deepest, NAN)


def max_rank_norm(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    n_rel = c.n_relevant
    judged = n_rel > 0
    size = np.maximum(pool.size, n_rel)
    deepest = np.clip(c.relevant_ranks.max(axis=1, initial=0), n_rel, size).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_size = np.log2(size.astype(float))
        span = log_size - np.log2(n_rel.astype(float))
        value = 100.0 * (log_size - np.log2(deepest)) / span
    return np.where(judged, np.where(size == n_rel, 100.0, value), NAN)


def complete_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    return np.where(c.n_relevant > 0, np.where(c.relevant_ranks.max(axis=1, initial=0) <= k, 100.0, 0.0), NAN)


def _ideal_dcg(m: int) -> float:
    ideal_ranks = np.arange(1, m + 1, dtype=float)
    return float(np.sum(1.0 / np.log2(ideal_ranks + 1.0)))


def ndcg_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    hit = c.relevant_mask & (c.relevant_ranks <= k)
    with np.errstate(divide="ignore"):
        gains = 1.0 / np.log2(c.relevant_ranks.astype(float) + 1.0)
    dcg, _ = exact_row_reduce(gains, hit)
    m = np.minimum(c.n_relevant, k)
    table = np.array([_ideal_dcg(int(x)) if x > 0 else 1.0 for x in range(int(m.max(initial=0)) + 1)])
    return np.where(c.n_relevant > 0, 100.0 * dcg / table[m], NAN)


def recall_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    hits = np.count_nonzero(c.relevant_mask & (c.relevant_ranks <= k), axis=1).astype(float)
    judged = c.n_relevant > 0
    return np.where(judged, 100.0 * hits / np.maximum(c.n_relevant, 1), NAN)


def _first_relevant_rank(c: ColumnarRuns) -> np.ndarray:
    big = np.iinfo(np.int64).max
    return np.where(c.relevant_mask, c.relevant_ranks, big).min(axis=1, initial=big)


def mrr_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    first = _first_relevant_rank(c)
    judged = c.n_relevant > 0
    with np.errstate(divide="ignore"):
        rr = np.where(first <= k, 100.0 / np.maximum(first, 1).astype(float), 0.0)
    return np.where(judged, rr, NAN)


# ---- bias metrics (bias.py) ----

def _best_native_relevant_rank(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    """[n] best rank of a relevant document in the query's language where EIR applies, else 0."""
    if pool.lang_share(ENGLISH) == 0.0 or c.size == 0:
        return np.zeros(c.size, np.int64)
    rel_langs = pool.langs[np.where(c.relevant_mask, c.relevant, 0)] if pool.size else \
        np.empty(c.relevant.shape, dtype=str)
    native = c.relevant_mask & (rel_langs == c.qlangs[:, None])
    big = np.iinfo(np.int64).max
    best = np.where(native, c.relevant_ranks, big).min(axis=1, initial=big)
    applies = (c.qlangs != ENGLISH) & native.any(axis=1)
    return np.where(applies, best, 0)


def _outranks(rank: np.ndarray, best_native: np.ndarray) -> np.ndarray:
    return np.where(best_native > 0, np.where((rank > 0) & (rank < best_native), 100.0, 0.0), NAN)


def _rank_in(matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    rows = np.arange(matrix.shape[0])
    return np.where(columns >= 0, matrix[rows, np.maximum(columns, 0)] if matrix.shape[1] else 0, 0)


def english_inclination(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    column = np.full(c.size, c.lang_column(ENGLISH)[0])
    return _outranks(_rank_in(c.best_irrelevant_rank, column), _best_native_relevant_rank(c, pool))


def neutral_inclination(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    column = c.lang_column(c.qlangs) if c.size else np.empty(0, np.int64)
    return _outranks(_rank_in(c.best_irrelevant_twinned_rank, column), _best_native_relevant_rank(c, pool))


@dataclass(frozen=True)
class _PoolCodes:
    lang: np.ndarray  # int [N] into `names`
    names: np.ndarray
    group_keys: np.ndarray  # sorted unique (parallel id code * L + lang code) of documents with a parallel id
    group_start: np.ndarray
    group_size: np.ndarray
    members: np.ndarray  # pool indices sorted by group key, then index
    pid: np.ndarray  # int [N] parallel id code, -1 for none


def _pool_codes(pool: PoolInfo) -> _PoolCodes:
    cached = pool.__dict__.get("_columnar_codes")
    if cached is not None:
        return cached
    names, lang = np.unique(pool.langs.astype(str), return_inverse=True) if pool.size else \
        (np.empty(0, str), np.empty(0, np.int64))
    has_pid = np.array([p is not None for p in pool.parallel_ids], dtype=bool).reshape(pool.size)
    pid_code = np.full(pool.size, -1, np.int64)
    if has_pid.any():
        _, codes = np.unique(np.array([str(p) for p in pool.parallel_ids[has_pid]]), return_inverse=True)
        pid_code[has_pid] = codes
    key = pid_code * max(1, names.size) + lang
    members = np.flatnonzero(has_pid)
    members = members[np.argsort(key[members], kind="stable")]
    group_keys, group_start, group_size = np.unique(key[members], return_index=True, return_counts=True)
    pool_codes = _PoolCodes(lang.astype(np.int64), names, group_keys, group_start, group_size, members, pid_code)
    pool.__dict__["_columnar_codes"] = pool_codes  # PoolInfo is frozen; like its cached_propertys, cache in __dict__
    return pool_codes


class _CellIndex:
    """Sorted (query, document) cells, to ask whether and where other cells occur among them."""

    def __init__(self, owner: np.ndarray, docs: np.ndarray, width: int) -> None:
        self.width = width
        cells = owner.astype(np.int64) * width + docs
        self.order = np.argsort(cells, kind="stable")
        self.sorted = cells[self.order]

    def find(self, q: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, position in the original input) for each cell (q, d)."""
        if self.sorted.size == 0:
            return np.zeros(q.size, bool), np.zeros(q.size, np.int64)
        probe = q.astype(np.int64) * self.width + d
        pos = np.minimum(np.searchsorted(self.sorted, probe), self.sorted.size - 1)
        return self.sorted[pos] == probe, self.order[pos]


_PACKED_KEY_LIMIT = 2 ** 62  # (query, doc, doc) cells packed in one int64 while they fit


def twin_preference(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    out = np.full(c.size, NAN)
    head, head_len = c.head, c.head_len
    if c.size == 0 or head.shape[1] == 0 or pool.size == 0:
        return out
    codes = _pool_codes(pool)
    n_lang = max(1, codes.names.size)
    en_code = _code_of(codes.names, ENGLISH)
    q_code = np.array([_code_of(codes.names, str(x)) for x in c.qlangs]) if c.size else np.empty(0, np.int64)
    valid = np.arange(head.shape[1])[None, :] < head_len[:, None]
    hq, hpos = np.nonzero(valid)
    hdoc = head[hq, hpos]
    rel_q, rel_pos = np.nonzero(c.relevant_mask)
    rel_doc = c.relevant[rel_q, rel_pos]
    width = pool.size
    relevant_cells = _CellIndex(rel_q, rel_doc, width)
    doc_rel, _ = relevant_cells.find(hq, hdoc)
    lang = codes.lang[hdoc]
    pid = codes.pid[hdoc]
    is_en = lang == en_code
    keep = (c.qlangs[hq] != ENGLISH) & (pid >= 0) & ~doc_rel & (is_en | (lang == q_code[hq]))
    hq, hdoc, is_en, pid = hq[keep], hdoc[keep], is_en[keep], pid[keep]
    twin_lang = np.where(is_en, q_code[hq], en_code)
    key = pid * n_lang + twin_lang
    g = np.searchsorted(codes.group_keys, key)
    g = np.minimum(g, max(0, codes.group_keys.size - 1))
    has = (twin_lang >= 0) & (codes.group_keys.size > 0)
    has &= codes.group_keys[g] == key if codes.group_keys.size else False
    hq, hdoc, is_en, g = hq[has], hdoc[has], is_en[has], g[has]
    sizes = codes.group_size[g]
    rep = np.repeat(np.arange(hq.size), sizes)
    offsets = np.arange(rep.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    twin = codes.members[codes.group_start[g][rep] + offsets]
    pq, pdoc, pen = hq[rep], hdoc[rep], is_en[rep]
    twin_rel, _ = relevant_cells.find(pq, twin)
    pq, pdoc, pen, twin = pq[~twin_rel], pdoc[~twin_rel], pen[~twin_rel], twin[~twin_rel]
    en_doc = np.where(pen, pdoc, twin)
    native_doc = np.where(pen, twin, pdoc)
    if pq.size and (c.size + 1) * width * width < _PACKED_KEY_LIMIT:  # distinct (query, English doc, native doc)
        cell = np.unique((pq.astype(np.int64) * width + en_doc) * width + native_doc)  # one int64 sort
        pq, rest = np.divmod(cell, width * width)
        en_doc, native_doc = np.divmod(rest, width)
    elif pq.size:
        order = np.lexsort((native_doc, en_doc, pq))
        pq, en_doc, native_doc = pq[order], en_doc[order], native_doc[order]
        first = np.ones(pq.size, bool)
        first[1:] = (np.diff(pq) != 0) | (np.diff(en_doc) != 0) | (np.diff(native_doc) != 0)
        pq, en_doc, native_doc = pq[first], en_doc[first], native_doc[first]
    vq, vpos = np.nonzero(valid)
    vdoc = head[vq, vpos]
    head_cells = _CellIndex(vq, vdoc, width)
    found_en, at_en = head_cells.find(pq, en_doc)
    found_nat, at_nat = head_cells.find(pq, native_doc)
    beyond = head_len[pq]
    pos_en = np.where(found_en, vpos[at_en] if vpos.size else 0, beyond)
    pos_nat = np.where(found_nat, vpos[at_nat] if vpos.size else 0, beyond)
    pairs = np.bincount(pq, minlength=c.size)
    first_en = np.bincount(pq, weights=(pos_en < pos_nat).astype(float), minlength=c.size)
    has_pairs = pairs > 0
    out[has_pairs] = 100.0 * first_en[has_pairs].astype(np.int64) / pairs[has_pairs]
    return out


def _code_of(names: np.ndarray, lang: str) -> int:
    pos = int(np.searchsorted(names, lang)) if names.size else 0
    return pos if pos < names.size and names[pos] == lang else -1


def english_exposure_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    share = pool.lang_share(ENGLISH)
    if share == 0.0 or c.size == 0:
        return np.full(c.size, NAN)
    width = min(k, c.top.shape[1])
    head = c.top[:, :width]
    length = np.minimum(c.top_len, k)
    inside = np.arange(width)[None, :] < length[:, None]
    english = inside & (pool.langs[np.where(inside, head, 0)] == ENGLISH)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (english.sum(axis=1) / length) / share
    return np.where(length > 0, value, NAN)


def top1_classes(c: ColumnarRuns, pool: PoolInfo) -> tuple[np.ndarray, np.ndarray]:
    """Per query: relevance of the rank-1 document (1 relevant, 0 irrelevant, -1 none) and its language
    class (0 same, 1 English, 2 other), as `bias.top1_class` finds them."""
    n = c.size
    relevance = np.full(n, -1, np.int64)
    doc_lang = np.full(n, "", dtype=object)
    judged = c.n_relevant > 0
    first_hit = c.relevant_mask & (c.relevant_ranks == 1)
    has_rel = judged & first_hit.any(axis=1)
    rows = np.flatnonzero(has_rel)
    if rows.size:
        docs = c.relevant[rows, first_hit[rows].argmax(axis=1)]
        relevance[rows] = 1
        doc_lang[rows] = pool.langs[docs]
    irr_first = c.best_irrelevant_rank == 1
    has_irr = judged & ~has_rel & irr_first.any(axis=1)
    rows = np.flatnonzero(has_irr)
    if rows.size:
        relevance[rows] = 0
        doc_lang[rows] = c.lang_names[irr_first[rows].argmax(axis=1)]
    rest = np.flatnonzero(judged & ~has_rel & ~has_irr & (c.top_len > 0))
    if rest.size:
        docs = c.top[rest, 0]
        is_rel = (c.relevant[rest] == docs[:, None]).any(axis=1)
        relevance[rest] = is_rel.astype(np.int64)
        doc_lang[rest] = pool.langs[docs]
    cls = np.where(doc_lang == c.qlangs.astype(object), _SAME, np.where(doc_lang == ENGLISH, _EN, _OTHER))
    return relevance, cls


def top1_indicator(c: ColumnarRuns, pool: PoolInfo, relevance: str, language: str) -> np.ndarray:
    found, cls = _top1_cached(c, pool)
    want = 1 if relevance == "rel" else 0
    return np.where(found >= 0, np.where((found == want) & (cls == _CLASS[language]), 100.0, 0.0), NAN)


def _top1_cached(c: ColumnarRuns, pool: PoolInfo) -> tuple[np.ndarray, np.ndarray]:
    cached = c.__dict__.get("_top1")  # the six top1_* metrics share one pass (runs and pool go together)
    if cached is None or cached[0] is not pool:
        cached = (pool, *top1_classes(c, pool))
        c.__dict__["_top1"] = cached
    return cached[1], cached[2]


def _twin_gap(c: ColumnarRuns, pool: PoolInfo, values: np.ndarray, sign: float) -> np.ndarray:
    """Mean over (English, non-English) relevant twin pairs of sign * (values[X] - values[English]), pairs in
    the order `bias._english_twin_pairs` lists them (groups by first appearance, then positions)."""
    out = np.full(c.size, NAN)
    width = c.relevant.shape[1]
    if c.size == 0 or width == 0:
        return out
    codes = _pool_codes(pool)
    docs = np.where(c.relevant_mask, c.relevant, 0)
    pid = np.where(c.relevant_mask, codes.pid[docs], -1)
    is_en = c.relevant_mask & (pool.langs[docs] == ENGLISH)
    same = (pid[:, :, None] == pid[:, None, :]) & (pid[:, :, None] >= 0)
    group_first = same.argmax(axis=2)  # first position holding the same parallel id
    pair = same & is_en[:, :, None] & (c.relevant_mask & ~is_en)[:, None, :]
    q, en, other = np.nonzero(pair)
    if q.size == 0:
        return out
    order = np.lexsort((other, en, group_first[q, en], q))
    q, en, other = q[order], en[order], other[order]
    vals = values.astype(float)
    diffs = sign * (vals[q, other] - vals[q, en])
    counts = np.bincount(q, minlength=c.size)
    slots = np.zeros((c.size, int(counts.max())))
    mask = np.arange(slots.shape[1])[None, :] < counts[:, None]
    slots[mask] = diffs
    means, n_pairs = exact_row_reduce(slots, mask, "mean")
    out[n_pairs > 0] = means[n_pairs > 0]
    return out


def twin_rank_gap(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    return _twin_gap(c, pool, c.relevant_ranks, 1.0)


def twin_score_gap(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    return _twin_gap(c, pool, c.relevant_scores, -1.0)
