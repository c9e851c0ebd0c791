"""The field's metrics (field.py) for all queries of one scenario at once, over ColumnarRuns.

Each function gives, to the bit, what its per-query definition in field.py gives (tests/test_field_metrics.py
checks it on random and hand-made runs): counts and rank sums are exact integers, and every float is made by
the same operations in the same order as the reference.
"""
from __future__ import annotations

import numpy as np

from ..langs import ENGLISH
from .columnar import ColumnarRuns, _CellIndex, _ideal_dcg, exact_row_reduce
from .field import PEER_WEIGHT_IRRELEVANT, PEER_WEIGHT_RELEVANT, kruskal_wallis_p, lang_count, pool_lang_codes
from .types import PoolInfo

NAN = np.nan


def _query_codes(c: ColumnarRuns, names: np.ndarray) -> np.ndarray:
    """[n] each query's language as a pool language code; -1 where the pool holds none of it."""
    if names.size == 0 or c.size == 0:
        return np.full(c.size, -1, np.int64)
    pos = np.minimum(np.searchsorted(names, c.qlangs.astype(str)), names.size - 1)
    return np.where(names[pos] == c.qlangs.astype(str), pos, -1).astype(np.int64)


def _relevant_codes(c: ColumnarRuns, codes: np.ndarray) -> np.ndarray:
    """[n, R] language code of each relevant document; -1 in the padding."""
    if codes.size == 0:
        return np.full(c.relevant.shape, -1, np.int64)
    return np.where(c.relevant_mask, codes[np.where(c.relevant_mask, c.relevant, 0)], -1)


def _is_relevant(c: ColumnarRuns, docs: np.ndarray, valid: np.ndarray, pool_size: int) -> np.ndarray:
    """[n, w] whether docs[i, j] (where valid) is one of query i's relevant documents."""
    out = np.zeros(valid.shape, bool)
    rq, rpos = np.nonzero(c.relevant_mask)
    q, pos = np.nonzero(valid)
    if rq.size and q.size:
        found, _ = _CellIndex(rq, c.relevant[rq, rpos], max(1, pool_size)).find(q, docs[q, pos])
        out[q, pos] = found
    return out


def _level_p(items: np.ndarray, groups: np.ndarray, values: np.ndarray, n_langs: int) -> np.ndarray:
    """Per row, the Kruskal-Wallis p over the items (mask) grouped by language code, of integer values."""
    n = items.shape[0]
    rows, cols = np.nonzero(items)
    cell = rows * n_langs + groups[rows, cols]
    vals = values[rows, cols].astype(np.int64)
    counts = np.bincount(cell, minlength=n * n_langs).reshape(n, n_langs)
    sums = np.zeros(n * n_langs, np.int64)
    np.add.at(sums, cell, vals)
    squares = np.zeros(n, np.int64)
    np.add.at(squares, rows, vals * vals)
    return kruskal_wallis_p(counts, sums.reshape(n, n_langs), squares)


def peer_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    if c.size == 0:
        return np.full(0, NAN)
    names, codes, _ = pool_lang_codes(pool)
    n_langs = max(1, names.size)
    mask = c.relevant_mask
    n_rel = c.n_relevant
    retrieved = mask & (c.relevant_ranks <= k)
    beyond = n_rel - retrieved.sum(axis=1)
    values = np.where(retrieved, 2 * c.relevant_ranks, (2 * n_rel + beyond + 1)[:, None])
    rel_codes = np.maximum(_relevant_codes(c, codes), 0)
    p_rel = np.where(retrieved.any(axis=1), _level_p(mask, rel_codes, values, n_langs), 1.0)
    value = PEER_WEIGHT_RELEVANT * p_rel
    width = min(k, c.head.shape[1])
    head = c.head[:, :width]
    valid = np.arange(width)[None, :] < c.head_len[:, None]
    docs = np.where(valid, head, 0)
    irrelevant = valid & ~_is_relevant(c, docs, valid, pool.size)
    head_codes = codes[docs] if codes.size else np.zeros(docs.shape, np.int64)
    positions = np.broadcast_to(2 * (np.arange(width) + 1), head.shape)
    p_irr = np.where(irrelevant.any(axis=1), _level_p(irrelevant, head_codes, positions, n_langs), 1.0)
    value = np.where(pool.size > n_rel, PEER_WEIGHT_IRRELEVANT * p_irr + value, value)
    return np.where(n_rel > 0, value, NAN)


def language_preference_rate(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    names, codes, _ = pool_lang_codes(pool)
    mask = c.relevant_mask
    rel_codes = _relevant_codes(c, codes)
    native = mask & (rel_codes == _query_codes(c, names)[:, None])
    applies = native.any(axis=1) & (mask & ~native).any(axis=1)
    if c.relevant.shape[1] == 0:
        return np.full(c.size, NAN)
    big = np.iinfo(np.int64).max
    best = np.where(mask, c.relevant_ranks, big).argmin(axis=1)
    first_native = native[np.arange(c.size), best]
    return np.where(applies, np.where(first_native, 100.0, 0.0), NAN)


def lang_ndcg_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    names, codes, _ = pool_lang_codes(pool)
    native = c.relevant_mask & (_relevant_codes(c, codes) == _query_codes(c, names)[:, None])
    with np.errstate(divide="ignore"):
        gains = 1.0 / np.log2(c.relevant_ranks.astype(float) + 1.0)
    dcg, _ = exact_row_reduce(gains, native & (c.relevant_ranks <= k))
    n_native = native.sum(axis=1)
    m = np.minimum(n_native, k)
    table = np.array([_ideal_dcg(int(x)) if x > 0 else 1.0 for x in range(int(m.max(initial=0)) + 1)])
    return np.where(n_native > 0, 100.0 * dcg / table[m], NAN)


def target_languages_recall_at(c: ColumnarRuns, pool: PoolInfo, k: int) -> np.ndarray:
    names, codes, _ = pool_lang_codes(pool)
    foreign = c.relevant_mask & (_relevant_codes(c, codes) != _query_codes(c, names)[:, None])
    n_foreign = foreign.sum(axis=1)
    hits = np.count_nonzero(foreign & (c.relevant_ranks <= k), axis=1).astype(float)
    return np.where(n_foreign > 0, 100.0 * hits / np.maximum(n_foreign, 1), NAN)


def calibrated_language_preference(c: ColumnarRuns, pool: PoolInfo) -> np.ndarray:
    out = np.full(c.size, NAN)
    if c.size == 0:
        return out
    names, codes, counts = pool_lang_codes(pool)
    q_code = _query_codes(c, names)
    en_pos = np.searchsorted(names, ENGLISH) if names.size else 0
    en_code = int(en_pos) if names.size and en_pos < names.size and names[en_pos] == ENGLISH else -2
    rel_codes = _relevant_codes(c, codes)
    n_en = lang_count(pool, ENGLISH) - (rel_codes == en_code).sum(axis=1)
    n_native = np.where(q_code >= 0, counts[np.maximum(q_code, 0)] if counts.size else 0, 0) \
        - np.where(q_code >= 0, (rel_codes == q_code[:, None]).sum(axis=1), 0)
    head, head_len = c.head, c.head_len
    valid = np.arange(head.shape[1])[None, :] < head_len[:, None]
    docs = np.where(valid, head, 0)
    kept = valid & ~_is_relevant(c, docs, valid, pool.size)
    head_codes = codes[docs] if codes.size else np.full(docs.shape, -3, np.int64)
    is_en = kept & (head_codes == en_code)
    is_native = kept & (head_codes == q_code[:, None]) & (q_code[:, None] >= 0)
    en_seen = is_en.sum(axis=1)
    native_seen = is_native.sum(axis=1)
    english_first = (np.cumsum(is_en, axis=1) * is_native).sum(axis=1) + en_seen * (n_native - native_seen)
    pairs = n_en * n_native - (n_en - en_seen) * (n_native - native_seen)
    ok = (c.qlangs != ENGLISH) & (pairs > 0)
    out[ok] = 100.0 * english_first[ok] / pairs[ok]
    return out
