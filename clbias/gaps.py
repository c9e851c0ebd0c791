"""The language gap of a pool: metric(English queries) - metric(X queries), paired by question.

Method.md section 8: the gap compares the *same question* asked in English and in X. A question is a query's
`parallel_id` when it has one, else the parallel unit of its relevant documents (when they all belong to one
unit: the man-page NAME line of one page in two languages is one question). The gap is paired over the
questions asked in both languages on the pool; a question with several queries in one language contributes
the mean of them. Only when no question is asked in both languages is the gap unpaired (English queries
and X queries resampled apart), and it is then labelled so (`LanguageGap.paired` False, `pairs` 0).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .corpus import Corpus
from .langs import ENGLISH
from .metrics import stats
from .report.model import LanguageGap, ScenarioResult

GAP_KINDS = ("multi", "multi-all", "full")


def question_keys(corpus: Corpus) -> dict[str, str | None]:
    """Query id -> the question it asks (see the module doc); None when it cannot be told."""
    unit_of = {d.id: d.parallel_id for d in corpus.docs}
    keys: dict[str, str | None] = {}
    for q in corpus.queries:
        if q.parallel_id is not None:
            keys[q.id] = f"q:{q.parallel_id}"
            continue
        units = {unit_of.get(doc) for doc, score in corpus.qrels.get(q.id, {}).items() if score > 0}
        keys[q.id] = f"u:{units.pop()}" if len(units) == 1 and None not in units else None
    return keys


def _by_question(values: list[float | None], qids: list[str], keys: dict[str, str | None]
                 ) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for qid, value in zip(qids, values):
        key = keys.get(qid)
        if key is not None:
            out[key].append(np.nan if value is None else float(value))
    return out


def _questions(qids: list[str], keys: dict[str, str | None]) -> set[str]:
    return {key for q in qids if (key := keys.get(q)) is not None}


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else float("nan")


def _round(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def language_gaps(corpus: Corpus, results: list[ScenarioResult], model: str, names: list[str],
                  n_resamples: int, seed: int) -> list[LanguageGap]:
    """One LanguageGap per pool (of GAP_KINDS) scored with English and X queries, for `model`."""
    keys = question_keys(corpus)
    gaps: list[LanguageGap] = []
    by_pool: dict[tuple[str, tuple[str, ...]], dict[str, ScenarioResult]] = {}
    for r in results:
        by_pool.setdefault((r.kind, tuple(r.pool_langs)), {})[r.query_lang] = r
    for (kind, pool_langs), per_lang in by_pool.items():
        if ENGLISH not in per_lang or kind not in GAP_KINDS:
            continue
        en_result = per_lang[ENGLISH]
        en = en_result.by_model[model]
        en_qids = en_result.query_ids or [qid for qid, _, _ in en.run]
        for lang, r in per_lang.items():
            if lang == ENGLISH:
                continue
            x = r.by_model[model]
            x_qids = r.query_ids or [qid for qid, _, _ in x.run]
            shared = sorted(_questions(en_qids, keys) & _questions(x_qids, keys))
            metrics: dict[str, float | None] = {}
            ci: dict[str, list[float] | None] = {}
            n: dict[str, int | None] = {}
            for name in names:
                if shared:
                    en_q = _by_question(en.per_query[name], en_qids, keys)
                    x_q = _by_question(x.per_query[name], x_qids, keys)
                    va = np.array([_nanmean(en_q[k]) for k in shared])
                    vb = np.array([_nanmean(x_q[k]) for k in shared])
                else:
                    va = np.array([np.nan if v is None else v for v in en.per_query[name]], dtype=float)
                    vb = np.array([np.nan if v is None else v for v in x.per_query[name]], dtype=float)
                gap = stats.language_gap(va, vb, paired=bool(shared), n_resamples=n_resamples, seed=seed)
                metrics[name] = None if gap is None else _round(gap.gap)
                ci[name] = None if gap is None else [_round(gap.low), _round(gap.high)]
                n[name] = None if gap is None else (gap.n_english if shared else gap.n_english + gap.n_other)
            gaps.append(LanguageGap(kind, list(pool_langs), lang, model, metrics, ci, bool(shared), len(shared), n))
    return gaps
