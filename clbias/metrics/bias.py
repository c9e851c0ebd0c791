"""Per-query English-bias metrics (ours, built on the paper's observations; see method.md section 3).

Like ranking.py these read exact deep ranks where they can, so search error is not counted as bias.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np

from .types import PoolInfo, QueryRun

ENGLISH = "en"

Relevance = Literal["rel", "irr"]
LanguageClass = Literal["same", "en", "other"]


def english_inclination(run: QueryRun, pool: PoolInfo) -> float | None:
    """EIR per query: 100 if an irrelevant English document outranks the best relevant native one, else 0.

    Applies to non-English queries with a relevant document in their own language, in pools that hold
    English at all; None otherwise.
    """
    if run.lang == ENGLISH or run.relevant.size == 0 or pool.lang_share(ENGLISH) == 0.0:
        return None
    native = pool.langs[run.relevant] == run.lang
    if not native.any():
        return None
    best_native = int(run.relevant_ranks[native].min())
    best_english_irrelevant = run.best_irrelevant_rank.get(ENGLISH)
    if best_english_irrelevant is not None and best_english_irrelevant < best_native:
        return 100.0
    return 0.0


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


def _twin_pairs(run: QueryRun, pool: PoolInfo) -> list[tuple[int, int, bool]]:
    """Pairs of positions in `run.relevant` that share a parallel id.

    Each pair is (first, second, signed): when signed, first is the English twin and second the
    non-English one; otherwise neither or both are English and only the size of a gap means anything.
    """
    groups: dict[object, list[int]] = defaultdict(list)
    for position, parallel_id in enumerate(pool.parallel_ids[run.relevant]):
        if parallel_id is not None:
            groups[parallel_id].append(position)
    pairs: list[tuple[int, int, bool]] = []
    langs = pool.langs[run.relevant]
    for positions in groups.values():
        for i, a in enumerate(positions):
            for b in positions[i + 1:]:
                a_en, b_en = langs[a] == ENGLISH, langs[b] == ENGLISH
                if a_en and not b_en:
                    pairs.append((a, b, True))
                elif b_en and not a_en:
                    pairs.append((b, a, True))
                else:
                    pairs.append((a, b, False))
    return pairs


def _mean_twin_gap(run: QueryRun, pool: PoolInfo, values: np.ndarray, sign: float) -> float | None:
    """Mean over twin pairs of sign * (values[second] - values[first]); absolute where no twin is English."""
    pairs = _twin_pairs(run, pool)
    if not pairs:
        return None
    values = values.astype(float)
    gaps = [sign * (values[second] - values[first]) if signed else abs(values[second] - values[first])
            for first, second, signed in pairs]
    return float(np.mean(gaps))


def twin_rank_gap(run: QueryRun, pool: PoolInfo) -> float | None:
    """Mean over relevant twin pairs of rank(non-English) - rank(English); > 0 = English ranked higher.

    Pairs without exactly one English twin contribute |rank difference|. None without a twin pair.
    """
    return _mean_twin_gap(run, pool, run.relevant_ranks, 1.0)


def twin_score_gap(run: QueryRun, pool: PoolInfo) -> float | None:
    """Mean over relevant twin pairs of score(English) - score(non-English); > 0 = English scored higher.

    Pairs without exactly one English twin contribute |score difference|. None without a twin pair.
    """
    return _mean_twin_gap(run, pool, run.relevant_scores, -1.0)
