"""BM25 over one pool, on `bm25s` (chosen by measurement over rank-bm25: benchmarks/results/bias-pipelines.md).

Tokenisation (`tokenize`), the same for every language: NFKC, lower case, then runs of letters and digits
(Unicode `\\w`). Scripts written without spaces between words are split into overlapping character bigrams
(a run of one character stays a unigram): Han (Chinese, Japanese kanji), Hiragana, Katakana, Thai, Lao,
Khmer and Myanmar. Korean Hangul is spaced and stays word tokens. No stemming, no stop words: the built-in
baseline is the plain lexical matcher a user's multilingual BM25 starts from.

Scores are Lucene's BM25 (k1 = 1.5, b = 0.75 by default), with the pool as the collection: document
frequencies and lengths are those of the pool being audited, as in a search engine that indexes that pool.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_UNSPACED = re.compile("([\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                       "\U00020000-\U0002fa1f\u0e00-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f]+)")
BACKENDS = ("bm25s", "rank_bm25")


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).lower()):
        for i, part in enumerate(_UNSPACED.split(word)):
            if not part:
                continue
            if i % 2 == 0:  # spaced script (the split's odd parts are the unspaced runs)
                tokens.append(part)
            elif len(part) == 1:
                tokens.append(part)
            else:
                tokens.extend(part[j:j + 2] for j in range(len(part) - 1))
    return tokens


class BM25Index:
    """BM25 statistics of one pool's tokenised documents; `scores` ranks every document for each query."""

    def __init__(self, docs: Sequence[list[str]], k1: float = 1.5, b: float = 0.75, backend: str = "bm25s") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown BM25 backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.n_docs = len(docs)
        self.backend = backend
        if backend == "bm25s":
            import bm25s

            self._index = bm25s.BM25(k1=k1, b=b, method="lucene")
            self._index.index([list(d) for d in docs], show_progress=False)
        else:
            from rank_bm25 import BM25Okapi

            self._index = BM25Okapi([list(d) or [""] for d in docs], k1=k1, b=b)

    def scores(self, queries: Sequence[list[str]]) -> np.ndarray:
        out = np.zeros((len(queries), self.n_docs), np.float32)
        for i, q in enumerate(queries):
            if q and self.n_docs:
                out[i] = self._index.get_scores(list(q))
        return out


def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("bm25s", "rank-bm25"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
