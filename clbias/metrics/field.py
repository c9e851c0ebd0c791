"""The field's language-bias metrics, per query: the reference definitions (docs/field-metrics.md).

PEER@k (Yang, Jänich, Mayfield, Lawrie, SIGIR 2024), MLAIRE's Language Preference Rate and Lang-nDCG@k
(arXiv 2605.07249), Shift's Target-Languages Recall@k (arXiv 2606.18801), and a calibrated language preference
for corpora without parallel ids, in the spirit of DeLP (arXiv 2601.02956). Each function reads one QueryRun
(binary relevance: every pool document outside the relevant set is judged irrelevant) and returns None where
the metric does not apply. field_columnar.py computes the same values for all queries at once.
"""
from __future__ import annotations

import math

import numpy as np

from ..langs import ENGLISH
from .types import PoolInfo, QueryRun

# PEER weights per relevance level; they sum to 1 as peer_measure requires. clbias has two levels (irrelevant,
# relevant) and weighs them equally: the paper leaves the weights to the user.
PEER_WEIGHT_IRRELEVANT = 0.5
PEER_WEIGHT_RELEVANT = 0.5


def pool_lang_codes(pool: PoolInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted language names, code of each pool document, documents per language), cached on the pool
    (PoolInfo is frozen: cached in __dict__ like its cached_propertys)."""
    cached = pool.__dict__.get("_field_lang_codes")
    if cached is None:
        if pool.size:
            names, codes = np.unique(pool.langs.astype(str), return_inverse=True)
        else:
            names, codes = np.empty(0, str), np.empty(0, np.int64)
        codes = codes.astype(np.int64).reshape(pool.size)
        cached = pool.__dict__["_field_lang_codes"] = (names, codes, np.bincount(codes, minlength=names.size))
    return cached


def lang_count(pool: PoolInfo, lang: str) -> int:
    names, _, counts = pool_lang_codes(pool)
    pos = int(np.searchsorted(names, lang)) if names.size else 0
    return int(counts[pos]) if pos < names.size and names[pos] == lang else 0


# ---- PEER@k ----

def chi2_sf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Survival function of the chi-squared distribution for integer degrees of freedom >= 1, elementwise
    (the closed forms of the regularised upper incomplete gamma Q(df/2, x/2); no scipy at run time).
    NaN stays NaN; x <= 0 gives 1."""
    x = np.asarray(x, dtype=float)
    df = np.asarray(df, dtype=np.int64)
    out = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    out[np.isposinf(x)] = 0.0
    for d in np.unique(df[finite]) if finite.any() else ():
        sel = finite & (df == d)
        half = np.maximum(x[sel], 0.0) / 2.0
        decay = np.exp(-half)
        if d % 2 == 0:
            term = np.ones_like(half)
            total = np.ones_like(half)
            for i in range(1, int(d) // 2):
                term = term * half / i
                total = total + term
            out[sel] = decay * total
        else:
            root = np.sqrt(half)
            total = np.array([math.erfc(v) for v in root.tolist()], dtype=float).reshape(half.shape)
            term = 2.0 * root / math.sqrt(math.pi)  # x^(1/2) / Gamma(3/2)
            for i in range(1, (int(d) - 1) // 2 + 1):
                total = total + decay * term
                term = term * half / (i + 0.5)
            out[sel] = total
    return out


def kruskal_wallis_p(counts: np.ndarray, sums: np.ndarray, sum_squares: np.ndarray) -> np.ndarray:
    """p-value of the Kruskal-Wallis H test as peer_measure computes it, one test per row.

    counts, sums: [m, L] integers (values per group and their sum; the values are doubled ranks, so every
    sum is exact); sum_squares: [m] integer sum of squared values. H = (N - 1) * SSG / SSA over the values
    themselves (no re-ranking, no tie correction), p = chi2.sf(H, groups - 1). A row with fewer than two
    non-empty groups gives 1; a row whose values are all equal gives NaN (0/0, as in peer_measure)."""
    counts = np.asarray(counts, dtype=np.int64)
    sums = np.asarray(sums, dtype=np.int64)
    total_n = counts.sum(axis=1)
    total_s = sums.sum(axis=1).astype(float)
    groups = (counts > 0).sum(axis=1)
    terms = np.where(counts > 0, sums.astype(float) ** 2 / np.maximum(counts, 1), 0.0)
    between = np.zeros(counts.shape[0])
    for j in range(counts.shape[1]):  # one column at a time: the same order for one row or many
        between = between + terms[:, j]
    n_float = np.maximum(total_n, 1).astype(float)
    between = between - total_s ** 2 / n_float
    spread = (np.asarray(sum_squares, dtype=np.int64) * np.maximum(total_n, 1) - sums.sum(axis=1) ** 2) / n_float
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (total_n - 1) * between / spread
    p = chi2_sf(h, np.maximum(groups - 1, 1))
    return np.where(groups < 2, 1.0, p)


def peer_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """PEER@k: the weighted sum over relevance levels of the Kruskal-Wallis p-value that documents of that
    level have equal expected rank whatever their language (1 = no evidence of unfairness).

    As the authors' implementation (peer_measure 0.0.1) computes it: a level's values are the ranks within
    the top k of its documents, grouped by language; relevant documents beyond k all take the rank
    N + (U + 1) / 2 (N = |R|, U = how many lie beyond k); irrelevant documents beyond k are left out. A level
    with no document in the top k, or with fewer than two languages, scores p = 1. Unjudged queries: None;
    a query whose values are all equal (peer_measure's 0/0): None."""
    n_rel = int(run.relevant.size)
    if n_rel == 0:
        return None
    names, codes, _ = pool_lang_codes(pool)
    n_langs = max(1, names.size)
    retrieved = run.relevant_ranks <= k
    beyond = n_rel - int(np.count_nonzero(retrieved))
    values = np.where(retrieved, 2 * run.relevant_ranks, 2 * n_rel + beyond + 1).astype(np.int64)
    p_rel = _level_p(codes[run.relevant], values, n_langs) if retrieved.any() else 1.0
    value = PEER_WEIGHT_RELEVANT * p_rel
    if pool.size > n_rel:  # the irrelevant level exists (every other pool document is judged irrelevant)
        head = np.asarray(run.head[:k], dtype=np.int64)
        irrelevant = ~np.isin(head, run.relevant)
        positions = np.flatnonzero(irrelevant)
        p_irr = _level_p(codes[head[irrelevant]], 2 * (positions + 1), n_langs) if positions.size else 1.0
        value = PEER_WEIGHT_IRRELEVANT * p_irr + value
    return None if math.isnan(value) else float(value)


def _level_p(groups: np.ndarray, values: np.ndarray, n_langs: int) -> float:
    counts = np.bincount(groups, minlength=n_langs)[None, :]
    sums = np.bincount(groups, weights=values.astype(float), minlength=n_langs).astype(np.int64)[None, :]
    return float(kruskal_wallis_p(counts, sums, np.array([int(np.sum(values.astype(np.int64) ** 2))]))[0])


# ---- MLAIRE: Language Preference Rate, Lang-nDCG@k ----

def language_preference_rate(run: QueryRun, pool: PoolInfo) -> float | None:
    """LPR: 100 when the best-ranked relevant document is in the query's language, else 0. Applies to queries
    whose relevant set holds a document in their language and one in another (parallel versions of the
    answer); None otherwise. > 50 in a two-language pool: the query's language is preferred."""
    if run.relevant.size == 0:
        return None
    native = pool.langs[run.relevant] == run.lang
    if native.all() or not native.any():
        return None
    return 100.0 if bool(native[int(np.argmin(run.relevant_ranks))]) else 0.0


def lang_ndcg_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """Lang-nDCG@k: binary nDCG@k in which only relevant documents in the query's language earn gain
    (a relevant document in another language counts as 0), ideal over min(|R in the query's language|, k);
    in points. None for a query with no relevant document in its own language."""
    if run.relevant.size == 0:
        return None
    native = pool.langs[run.relevant] == run.lang
    n_native = int(np.count_nonzero(native))
    if n_native == 0:
        return None
    hits = run.relevant_ranks[native & (run.relevant_ranks <= k)].astype(float)
    dcg = float(np.sum(1.0 / np.log2(hits + 1.0)))
    ideal_ranks = np.arange(1, min(n_native, k) + 1, dtype=float)
    return 100.0 * dcg / float(np.sum(1.0 / np.log2(ideal_ranks + 1.0)))


# ---- Shift: Target-Languages Recall@k ----

def target_languages_recall_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """TLR@k: the share of the relevant documents in languages other than the query's that are in the top k,
    in points. None for a query with no relevant document outside its own language."""
    if run.relevant.size == 0:
        return None
    foreign = pool.langs[run.relevant] != run.lang
    n_foreign = int(np.count_nonzero(foreign))
    if n_foreign == 0:
        return None
    return 100.0 * float(np.count_nonzero(foreign & (run.relevant_ranks <= k))) / n_foreign


# ---- calibrated language preference (in the spirit of DeLP) ----

def calibrated_language_preference(run: QueryRun, pool: PoolInfo) -> float | None:
    """% of irrelevant (English, query-language) document pairs with at least one member in the head where the
    English one ranks higher; a member outside the head ranks below. 50 = neutral, > 50 English preferred,
    < 50 the query's language preferred. Needs no parallel ids: it is twin preference over every pair, not
    only translations of each other. Pairs, not counts, make it independent of how many irrelevant documents
    each language holds; relevant documents are left out, so where the answers sit does not count either.
    Non-English queries in pools holding irrelevant documents of both languages; None without a pair."""
    if run.lang == ENGLISH:
        return None
    relevant_langs = pool.langs[run.relevant]
    n_en = lang_count(pool, ENGLISH) - int(np.count_nonzero(relevant_langs == ENGLISH))
    n_native = lang_count(pool, run.lang) - int(np.count_nonzero(relevant_langs == run.lang))
    relevant = set(run.relevant.tolist())
    en_seen = native_seen = english_first = 0
    for doc in run.head.tolist():
        if doc in relevant:
            continue
        lang = str(pool.langs[doc])
        if lang == ENGLISH:
            en_seen += 1
        elif lang == run.lang:
            native_seen += 1
            english_first += en_seen  # every English document above it
    english_first += en_seen * (n_native - native_seen)  # English in the head over native documents below it
    pairs = n_en * n_native - (n_en - en_seen) * (n_native - native_seen)
    return 100.0 * english_first / pairs if pairs > 0 else None
