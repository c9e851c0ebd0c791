"""Scenarios: which documents form the pool and which queries search it.

For each non-English language X in the corpus (docs/method.md, sections 2 and 8):
  multi       the paper's pool: the documents of the parallel units (shared `parallel_id`) present in
              both English and X, so every relevant text is there in both languages (|R| = 2); queries in
              en and in X (one scenario per query language). Documents without a translation are left out.
  multi-all   the corpus as it is: all en + all X documents, translated or not (the view of a partially
              translated corpus; skipped, with a note, when it holds the same documents as `multi` or `full`)
  mono-same   X -> X and en -> en: every document of the one language
  mono-cross  X -> en and en -> X: query in one language, every document of the other (classic CLIR; no
              parallel restriction is needed, the pool holds one language)
  full        the corpus as given (any number of languages), one scenario per query language
  multi-n     (beyond the paper) for each query language X, parallel pools that grow one language at a time:
              en+X, en+X+Y1, en+X+Y1+Y2, ..., each holding the units present in every one of its languages,
              so the report shows how each added language moves English inclination
  matrix      (beyond the paper) every query language X x every single-language pool Y, the monolingual
              diagonal X -> X included: the language-by-language view (report/matrix.py derives the
              cross-lingual penalty S(X,Y) - S(X,X) and the direction asymmetry S(X,Y) - S(Y,X) from it)
A query enters a scenario only if at least one of its relevant documents is in the pool.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .corpus import Corpus

from .langs import ENGLISH

SCENARIO_KINDS = ("multi", "multi-all", "mono-same", "mono-cross", "full", "multi-n", "matrix")
DEFAULT_KINDS = ("multi", "multi-all", "mono-same", "mono-cross", "full")
PARALLEL_KINDS = frozenset({"multi", "multi-n"})  # pools restricted to units present in every pool language
SCENARIO_DESCRIPTIONS = {
    "multi": "English + X, parallel units only: every text in both languages (the paper's pool)",
    "multi-all": "the corpus as it is: all en + all X documents, translated or not",
    "mono-same": "query and pool in one language",
    "mono-cross": "query in one language, pool entirely in the other",
    "full": "the whole corpus as given",
    "multi-n": "parallel pools of English + X + more languages, growing one language at a time",
    "matrix": "every query language against every single-language pool",
}
MULTI_N_MAX_STEPS = 4


@dataclass(frozen=True)
class Scenario:
    kind: str
    pool_langs: tuple[str, ...]
    query_lang: str
    pool: np.ndarray  # int indices into corpus.docs
    queries: np.ndarray  # int indices into corpus.queries
    relevant: tuple[np.ndarray, ...]  # per query: indices into `pool` of its relevant documents
    skipped_queries: int  # queries of this language with no relevant document in the pool
    excluded: tuple[np.ndarray, ...] = ()  # per query: indices into `pool` left out of its ranking (label-free)

    @property
    def label(self) -> str:
        return f"{self.kind} [{'+'.join(self.pool_langs)}] q={self.query_lang}"


def _pools(corpus: Corpus, kinds: set[str], langs: set[str] | None) -> list[tuple[str, tuple[str, ...], str]]:
    doc_langs = corpus.doc_langs
    query_langs = set(corpus.query_langs)
    others = [x for x in doc_langs if x != ENGLISH and (langs is None or x in langs)]
    has_en = ENGLISH in doc_langs
    specs: list[tuple[str, tuple[str, ...], str]] = []
    for kind in ("multi", "multi-all"):
        if kind in kinds and has_en:
            for x in others:
                for q in (ENGLISH, x):
                    specs.append((kind, (ENGLISH, x), q))
    if "mono-same" in kinds:
        for x in ([ENGLISH] if has_en else []) + others:
            specs.append(("mono-same", (x,), x))
    if "mono-cross" in kinds and has_en:
        for x in others:
            specs.append(("mono-cross", (ENGLISH,), x))
            specs.append(("mono-cross", (x,), ENGLISH))
    if "multi-n" in kinds and has_en and len(others) >= 2:
        for x in others:
            added = [y for y in others if y != x]
            for step in range(1, min(len(added), MULTI_N_MAX_STEPS) + 1):
                pool_langs = (ENGLISH, x, *added[:step])
                specs.append(("multi-n", pool_langs, x))
    if "matrix" in kinds:
        chosen = ([ENGLISH] if has_en else []) + others
        for q in chosen:
            for y in chosen:
                specs.append(("matrix", (y,), q))
    if "full" in kinds and len(doc_langs) > 1:
        pool = tuple(l for l in doc_langs if langs is None or l in langs or l == ENGLISH)
        for q in sorted(query_langs & set(pool)):
            specs.append(("full", pool, q))
    return [s for s in specs if s[2] in query_langs]


def parallel_pool(doc_langs: np.ndarray, doc_units: np.ndarray, pool_langs: tuple[str, ...]) -> np.ndarray:
    """Indices of the documents in `pool_langs` whose parallel unit has a document in every one of them."""
    langs_of: dict[str, set[str]] = {}
    for lang, unit in zip(doc_langs, doc_units):
        if unit is not None and lang in pool_langs:
            langs_of.setdefault(unit, set()).add(lang)
    complete = {unit for unit, langs in langs_of.items() if len(langs) == len(set(pool_langs))}
    return np.flatnonzero(np.isin(doc_langs, pool_langs) & np.fromiter((u in complete for u in doc_units), bool,
                                                                        len(doc_units)))


def _pool_docs(kind: str, pool_langs: tuple[str, ...], doc_langs: np.ndarray, doc_units: np.ndarray) -> np.ndarray:
    if kind in PARALLEL_KINDS:
        return parallel_pool(doc_langs, doc_units, pool_langs)
    return np.flatnonzero(np.isin(doc_langs, pool_langs))


def _repeats(kind: str, pool_langs: tuple[str, ...], pool: np.ndarray,
             built: dict[tuple[str, tuple[str, ...]], np.ndarray]) -> str | None:
    """For `multi-all`: the scenario already built with exactly the same documents (`multi`, or `full` over
    the same languages), so that an audit does not score one pool twice under two names."""
    if kind != "multi-all":
        return None
    for (other_kind, other_langs), docs in built.items():
        if other_kind in ("multi", "full") and set(other_langs) == set(pool_langs) and np.array_equal(docs, pool):
            return f"{other_kind} [{'+'.join(other_langs)}]"
    return None


def _repeat_notes(repeated: list[tuple[tuple[str, ...], str]]) -> list[str]:
    """One note for every `multi-all` pool left out as a repeat: a fully parallel corpus repeats `multi` in
    each language, and one line says so instead of one line per language."""
    if len(repeated) == 1:
        (langs, same), = repeated
        return [f"multi-all [{'+'.join(langs)}]: the same documents as {same}, not scored twice"]
    by_kind: dict[str, list[tuple[str, ...]]] = {}
    for langs, same in repeated:
        by_kind.setdefault(same.split(" ")[0], []).append(langs)
    return [f"multi-all: the same documents as {kind} for {_pool_list(pools)}, not scored twice"
            for kind, pools in by_kind.items()]


def _pool_list(pools: list[tuple[str, ...]]) -> str:
    """`en+X for X = ar, de, …` when every pool is English plus one language, else each pool spelt out."""
    if all(len(langs) == 2 and ENGLISH in langs for langs in pools):
        return "en+X, X = " + ", ".join(next(lang for lang in langs if lang != ENGLISH) for langs in pools)
    return ", ".join("+".join(langs) for langs in pools)


def build_scenarios(corpus: Corpus, kinds: list[str] | None = None, langs: list[str] | None = None,
                    expand_translations: bool = True) -> tuple[list[Scenario], list[str]]:
    """Return the scenarios with at least one judged query, and notes on those skipped."""
    chosen = set(kinds or DEFAULT_KINDS)
    relevant = corpus.relevant_docs(expand_translations)
    doc_pos = corpus.doc_index()
    doc_langs = np.array([d.lang for d in corpus.docs], dtype=object)
    doc_units = np.array([d.parallel_id for d in corpus.docs], dtype=object)
    scenarios: list[Scenario] = []
    notes: list[str] = []
    specs = _pools(corpus, chosen, set(langs) if langs else None)
    specs.sort(key=lambda spec: spec[0] == "multi-all")  # after `multi` and `full`, which it may repeat
    built: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    repeated: list[tuple[tuple[str, ...], str]] = []
    for kind, pool_langs, qlang in specs:
        pool = _pool_docs(kind, pool_langs, doc_langs, doc_units)
        name = f"{kind} [{'+'.join(pool_langs)}] q={qlang}"
        same = _repeats(kind, pool_langs, pool, built)
        if same is not None:
            if (pool_langs, same) not in repeated:
                repeated.append((pool_langs, same))
            continue
        built.setdefault((kind, pool_langs), pool)
        if kind in PARALLEL_KINDS and pool.size == 0:
            notes.append(f"{name}: skipped, no parallel unit (parallel_id) has a document in every pool language"
                         + (" (multi-all shows the corpus as it is)" if kind == "multi" else ""))
            continue
        in_pool = {int(doc): i for i, doc in enumerate(pool)}
        q_idx: list[int] = []
        rel_idx: list[np.ndarray] = []
        excl_idx: list[np.ndarray] = []
        skipped = 0
        for qi, q in enumerate(corpus.queries):
            if q.lang != qlang:
                continue
            left_out = corpus.excluded.get(q.id)
            rel = sorted(in_pool[doc_pos[d]] for d in relevant.get(q.id, ()) if doc_pos[d] in in_pool and d != left_out)
            if not rel:
                skipped += 1
                continue
            q_idx.append(qi)
            rel_idx.append(np.asarray(rel, dtype=np.int64))
            excl_idx.append(np.asarray([in_pool[doc_pos[left_out]]] if left_out is not None and doc_pos[left_out] in in_pool
                                       else [], dtype=np.int64))
        if not q_idx:
            notes.append(f"{name}: skipped, no query has a relevant document in this pool")
            continue
        scenarios.append(Scenario(kind, pool_langs, qlang, pool, np.asarray(q_idx, dtype=np.int64),
                                  tuple(rel_idx), skipped, tuple(excl_idx) if corpus.excluded else ()))
    notes[:0] = _repeat_notes(repeated)
    return scenarios, notes + unscored_query_notes(corpus, scenarios, relevant)


def unscored_query_notes(corpus: Corpus, scenarios: list[Scenario], relevant: dict[str, set[str]]) -> list[str]:
    """A note, with counts, for each query language whose judged queries no scenario scores (no pool is in
    their language: `zh` queries with `zh-Hant` documents, `es` queries against an English-only pool), so
    that they are never dropped silently."""
    scored = {int(q) for s in scenarios for q in s.queries}
    doc_langs = corpus.doc_langs
    judged: dict[str, int] = {}
    for qi, q in enumerate(corpus.queries):
        if q.lang not in doc_langs and qi not in scored and relevant.get(q.id):
            judged[q.lang] = judged.get(q.lang, 0) + 1
    notes = []
    for lang, n in sorted(judged.items()):
        base = lang.split("-")[0]
        near = [d for d in doc_langs if d.split("-")[0] == base]
        hint = (f"; documents in {', '.join(near)} share its base language: give queries and documents the same "
                f"code to score them" if near else "")
        notes.append(f"{n} judged {lang} quer{'y' if n == 1 else 'ies'} not scored: no scenario has a pool in its "
                     f"language (document languages: {', '.join(doc_langs)}){hint}")
    return notes
