"""Scenarios: which documents form the pool and which queries search it.

For each non-English language X in the corpus (method.md section 2):
  multi       pool = en + X documents, queries in en and in X (one scenario per query language)
  mono-same   X -> X and en -> en
  mono-cross  X -> en and en -> X
  full        the corpus as given (any number of languages), one scenario per query language
A query enters a scenario only if at least one of its relevant documents is in the pool.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .corpus import Corpus

SCENARIO_KINDS = ("multi", "mono-same", "mono-cross", "full")
ENGLISH = "en"


@dataclass(frozen=True)
class Scenario:
    kind: str
    pool_langs: tuple[str, ...]
    query_lang: str
    pool: np.ndarray  # int indices into corpus.docs
    queries: np.ndarray  # int indices into corpus.queries
    relevant: tuple[np.ndarray, ...]  # per query: indices into `pool` of its relevant documents
    skipped_queries: int  # queries of this language with no relevant document in the pool

    @property
    def label(self) -> str:
        return f"{self.kind} [{'+'.join(self.pool_langs)}] q={self.query_lang}"


def _pools(corpus: Corpus, kinds: set[str], langs: set[str] | None) -> list[tuple[str, tuple[str, ...], str]]:
    doc_langs = corpus.doc_langs
    query_langs = set(corpus.query_langs)
    others = [x for x in doc_langs if x != ENGLISH and (langs is None or x in langs)]
    has_en = ENGLISH in doc_langs
    specs: list[tuple[str, tuple[str, ...], str]] = []
    if "multi" in kinds and has_en:
        for x in others:
            for q in (ENGLISH, x):
                specs.append(("multi", (ENGLISH, x), q))
    if "mono-same" in kinds:
        for x in ([ENGLISH] if has_en else []) + others:
            specs.append(("mono-same", (x,), x))
    if "mono-cross" in kinds and has_en:
        for x in others:
            specs.append(("mono-cross", (ENGLISH,), x))
            specs.append(("mono-cross", (x,), ENGLISH))
    if "full" in kinds and len(doc_langs) > 1:
        pool = tuple(l for l in doc_langs if langs is None or l in langs or l == ENGLISH)
        for q in sorted(query_langs & set(pool)):
            specs.append(("full", pool, q))
    return [s for s in specs if s[2] in query_langs]


def build_scenarios(corpus: Corpus, kinds: list[str] | None = None, langs: list[str] | None = None,
                    expand_translations: bool = True) -> tuple[list[Scenario], list[str]]:
    """Return the scenarios with at least one judged query, and notes on those skipped."""
    chosen = set(kinds or SCENARIO_KINDS)
    relevant = corpus.relevant_docs(expand_translations)
    doc_pos = corpus.doc_index()
    doc_langs = np.array([d.lang for d in corpus.docs], dtype=object)
    scenarios: list[Scenario] = []
    notes: list[str] = []
    for kind, pool_langs, qlang in _pools(corpus, chosen, set(langs) if langs else None):
        pool = np.flatnonzero(np.isin(doc_langs, pool_langs))
        in_pool = {int(doc): i for i, doc in enumerate(pool)}
        q_idx: list[int] = []
        rel_idx: list[np.ndarray] = []
        skipped = 0
        for qi, q in enumerate(corpus.queries):
            if q.lang != qlang:
                continue
            rel = sorted(in_pool[doc_pos[d]] for d in relevant.get(q.id, ()) if doc_pos[d] in in_pool)
            if not rel:
                skipped += 1
                continue
            q_idx.append(qi)
            rel_idx.append(np.asarray(rel, dtype=np.int64))
        name = f"{kind} [{'+'.join(pool_langs)}] q={qlang}"
        if not q_idx:
            notes.append(f"{name}: skipped, no query has a relevant document in this pool")
            continue
        scenarios.append(Scenario(kind, pool_langs, qlang, pool, np.asarray(q_idx, dtype=np.int64),
                                  tuple(rel_idx), skipped))
    return scenarios, notes
