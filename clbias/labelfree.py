"""Audits of corpora that come without queries or qrels.

With `parallel_id` (a translation memory, multilingual docs): every document that has a translation becomes a
*twin probe*: its text is the query (with the query prefix), its translations are the relevant documents, and
the document itself is excluded from the ranking of its own probe. This is the same held-out idea as the
probe builders, at the granularity the user's corpus has; the report labels these queries as derived.

Without `parallel_id`: no relevance can be inferred, so the report shows only English exposure and the
language mix of each document's nearest neighbours, and says why the ranking metrics are absent.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .corpus import Corpus, Record
from .langs import ENGLISH

TWIN_QUERY_PREFIX = "twin:"
TWIN_DERIVATION = ("label-free: each document with a translation is a query, its translations (same parallel_id) "
                   "are relevant, and the document itself is excluded from its own ranking")


def needs_label_free(corpus: Corpus) -> bool:
    return not corpus.queries or not corpus.qrels


def twin_probes(corpus: Corpus) -> Corpus:
    """The corpus with derived queries and qrels; `excluded` maps each derived query to its source document."""
    groups: dict[str, list[Record]] = {}
    for d in corpus.docs:
        if d.parallel_id is not None:
            groups.setdefault(d.parallel_id, []).append(d)
    queries: list[Record] = []
    qrels: dict[str, dict[str, float]] = {}
    excluded: dict[str, str] = {}
    for pid, docs in groups.items():
        if len({d.lang for d in docs}) < 2:
            continue
        for d in docs:
            qid = f"{TWIN_QUERY_PREFIX}{d.id}"
            queries.append(Record(qid, d.text, d.lang, pid))
            qrels[qid] = {t.id: 1 for t in docs if t.id != d.id}
            excluded[qid] = d.id
    meta = {**corpus.meta, "query_derivation": TWIN_DERIVATION, "label_free": True}
    return replace(corpus, queries=queries, qrels=qrels, meta=meta, excluded=excluded)


def neighbour_mix(doc_vecs: np.ndarray, langs: np.ndarray, k: int = 10, chunk: int = 512) -> dict[str, object]:
    """Per document language: % of its k nearest other documents in each language, and English exposure."""
    n = len(doc_vecs)
    k = min(k, n - 1)
    all_langs = sorted(set(langs.tolist()))
    counts = {a: {b: 0 for b in all_langs} for a in all_langs}
    for start in range(0, n, chunk):
        scores = doc_vecs[start:start + chunk] @ doc_vecs.T
        rows = np.arange(scores.shape[0])
        scores[rows, start + rows] = -np.inf  # a document is not its own neighbour
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k > 0 else np.empty((len(rows), 0), dtype=int)
        for i, neighbours in enumerate(top):
            row = counts[langs[start + i]]
            for lang in langs[neighbours]:
                row[lang] += 1
    mix = {a: {b: round(100 * c / max(1, sum(row.values())), 2) for b, c in row.items()} for a, row in counts.items()}
    en_share = float(np.mean(langs == ENGLISH)) if n else 0.0
    exposure = {a: (round(mix[a].get(ENGLISH, 0.0) / 100 / en_share, 4) if en_share else None) for a in all_langs}
    return {"k": k, "langs": all_langs, "mix": mix, "en_exposure": exposure,
            "pool_en_share": round(en_share, 4)}
