"""Per-query English-bias metrics (ours, built on the paper's observations; see docs/method.md, section 3).

Like ranking.py these read exact deep ranks where they can, so search error is not counted as bias.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np

from ..langs import ENGLISH
from .types import PoolInfo, QueryRun

Relevance = Literal["rel", "irr"]
LanguageClass = Literal["same", "en", "other"]


def _best_native_relevant_rank(run: QueryRun, pool: PoolInfo) -> int | None:
    """Best rank of a relevant document in the query's language, for the queries EIR applies to: non-English,
    with a relevant document in their own language, in a pool that holds English at all. None otherwise."""
    if run.lang == ENGLISH or run.relevant.size == 0 or pool.lang_share(ENGLISH) == 0.0:
        return None
    native = pool.langs[run.relevant] == run.lang
    if not native.any():
        return None
    return int(run.relevant_ranks[native].min())


def _outranks(rank: int | None, best_native: int | None) -> float | None:
    if best_native is None:
        return None
    return 100.0 if rank is not None and rank < best_native else 0.0


def english_inclination(run: QueryRun, pool: PoolInfo) -> float | None:
    """EIR per query: 100 if an irrelevant English document outranks the best relevant native one, else 0.

    Applies to non-English queries with a relevant document in their own language, in pools that hold
    English at all; None otherwise.
    """
    return _outranks(run.best_irrelevant_rank.get(ENGLISH), _best_native_relevant_rank(run, pool))


def neutral_inclination(run: QueryRun, pool: PoolInfo) -> float | None:
    """Neutral EIR per query: 100 if an irrelevant native document *that has an English twin in the pool*
    outranks the best relevant native one, else 0 (docs/method.md, section 6).

    A language-blind model puts that twin's English version right beside it, so this is the EIR such a
    model would show at the same ranking quality: EIR above it is English preference, below it own-language
    preference. Applies to the same queries as EIR, so the two are averaged over the same set.
    """
    return _outranks(run.best_irrelevant_twinned_rank.get(run.lang), _best_native_relevant_rank(run, pool))


def twin_preference(run: QueryRun, pool: PoolInfo) -> float | None:
    """% of irrelevant parallel pairs (English twin, query-language twin) in the ranking head where the
    English twin ranks higher: 50 = neutral, > 50 English preferred, < 50 own language preferred.

    A pair counts when at least one member is in the head (`run.head`, exact even with HNSW); a member
    outside it ranks below. Non-English queries only; None without such a pair.
    """
    if run.lang == ENGLISH:
        return None
    head = run.head
    position = {int(doc): i for i, doc in enumerate(head)}
    relevant = set(run.relevant.tolist())
    pairs: set[tuple[int, int]] = set()
    for doc in position:
        pid = pool.parallel_ids[doc]
        lang = str(pool.langs[doc])
        if pid is None or doc in relevant or lang not in (ENGLISH, run.lang):
            continue
        twin_lang = run.lang if lang == ENGLISH else ENGLISH
        for twin in pool.by_parallel_id.get((pid, twin_lang), ()):
            if twin not in relevant:
                pairs.add((doc, twin) if lang == ENGLISH else (twin, doc))
    if not pairs:
        return None
    beyond = len(head)
    english_first = sum(position.get(en, beyond) < position.get(native, beyond) for en, native in pairs)
    return 100.0 * english_first / len(pairs)


def english_exposure_at(run: QueryRun, pool: PoolInfo, k: int) -> float | None:
    """English share of the top k divided by English share of the pool (1 = parity, >1 = over-exposed).

    The top k is read from `run.top`; if the run holds fewer than k results, the share is over those.
    None if the pool holds no English or the run returned nothing.
    """
    pool_share = pool.lang_share(ENGLISH)
    head = run.top[:k]
    if pool_share == 0.0 or head.size == 0:
        return None
    return float(np.mean(pool.langs[head] == ENGLISH)) / pool_share


def _language_class(doc_lang: str, query_lang: str) -> LanguageClass:
    if doc_lang == query_lang:
        return "same"
    return "en" if doc_lang == ENGLISH else "other"


def top1_class(run: QueryRun, pool: PoolInfo) -> tuple[Relevance, LanguageClass] | None:
    """Relevance and language class of the rank-1 document; None for an unjudged or empty query.

    Rank 1 is found from the exact deep ranks (a relevant rank of 1, or a language whose best irrelevant
    rank is 1); `top[0]` is the fallback for runs that carry no `best_irrelevant_rank`. For an English
    query an English document is "same", so its "en" class is always empty.
    """
    if run.relevant.size == 0:
        return None
    first_relevant = np.flatnonzero(run.relevant_ranks == 1)
    if first_relevant.size:
        return "rel", _language_class(str(pool.langs[run.relevant[first_relevant[0]]]), run.lang)
    for doc_lang, rank in run.best_irrelevant_rank.items():
        if rank == 1:
            return "irr", _language_class(doc_lang, run.lang)
    if run.top.size == 0:
        return None
    doc = int(run.top[0])
    relevance: Relevance = "rel" if bool(np.isin(doc, run.relevant)) else "irr"
    return relevance, _language_class(str(pool.langs[doc]), run.lang)


def top1_indicator(run: QueryRun, pool: PoolInfo, relevance: Relevance,
                   language: LanguageClass) -> float | None:
    """100 if the rank-1 document falls in (relevance, language), else 0; means become percentages."""
    found = top1_class(run, pool)
    if found is None:
        return None
    return 100.0 if found == (relevance, language) else 0.0


def _english_twin_pairs(run: QueryRun, pool: PoolInfo) -> list[tuple[int, int]]:
    """(English, non-English) pairs of positions in `run.relevant` that share a parallel id.

    Only pairs with exactly one English member: a gap between two non-English versions has no sign toward
    English, and averaging its size with signed gaps would mix two quantities.
    """
    groups: dict[object, list[int]] = defaultdict(list)
    for position, parallel_id in enumerate(pool.parallel_ids[run.relevant]):
        if parallel_id is not None:
            groups[parallel_id].append(position)
    is_english = pool.langs[run.relevant] == ENGLISH
    return [(en, other) for positions in groups.values() for en in positions if is_english[en]
            for other in positions if not is_english[other]]


def _mean_twin_gap(run: QueryRun, pool: PoolInfo, values: np.ndarray, sign: float) -> float | None:
    """Mean over English-vs-X twin pairs of sign * (values[X] - values[English])."""
    pairs = _english_twin_pairs(run, pool)
    if not pairs:
        return None
    values = values.astype(float)
    return float(np.mean([sign * (values[other] - values[en]) for en, other in pairs]))


def twin_rank_gap(run: QueryRun, pool: PoolInfo) -> float | None:
    """Mean over relevant (English, non-English) twin pairs of rank(non-English) - rank(English);
    > 0 = English ranked higher. None without such a pair."""
    return _mean_twin_gap(run, pool, run.relevant_ranks, 1.0)


def twin_score_gap(run: QueryRun, pool: PoolInfo) -> float | None:
    """Mean over relevant (English, non-English) twin pairs of score(English) - score(non-English);
    > 0 = English scored higher. None without such a pair."""
    return _mean_twin_gap(run, pool, run.relevant_scores, -1.0)
