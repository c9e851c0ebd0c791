"""Dense systems: vectors for every text once per audit, then exact (or HNSW) search per pool.

`EncoderSystem` runs an exported ONNX model, on this machine or on a Ray cluster (`--engine ray`: embedding
with Ray Data, exact scoring of large pools as Ray tasks); `EmbedderSystem` takes the vectors of a user's
embedder. Both score `queries @ docs.T`, the columnar fast path (clbias.search.ranking).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from ..corpus import Corpus, passage_text
from ..metrics.types import PoolInfo
from ..report.model import ModelInfo
from ..runtime.embed import embed_texts
from ..runtime.encoder import Encoder
from ..scenarios import Scenario
from ..search import choose_index
from ..search.ranking import RetrievalResult, retrieve
from .base import AuditContext, Embedder, user_info

TRUNCATED_IDS_SHOWN = 5  # ids of truncated texts named per language in the report


@dataclass
class EmbeddedCorpus:
    docs: np.ndarray
    queries: np.ndarray
    # "passage"/"query": lang -> number truncated; "passage_ids"/"query_ids": lang -> first truncated ids
    truncation: dict[str, dict[str, Any]]
    empty: dict[str, list[str]] = field(default_factory=dict)  # "documents"/"queries": ids with no token of text


def model_info(encoder: Encoder, name: str | None = None) -> ModelInfo:
    m = encoder.manifest
    return ModelInfo(name=name or m.name, sha256=encoder.sha256, onnx=encoder.onnx,
                     prefixes={"query": m.prefixes.query, "passage": m.prefixes.passage}, pooling=m.pooling,
                     normalize=m.normalize, max_length=m.max_length, dim=m.dim, source=m.source,
                     quantization=m.quantization.get(encoder.onnx, {}))


def embed_corpus(corpus: Corpus, encoder: Encoder, settings: Any, progress: Any = None,
                 docs_needed: np.ndarray | None = None, queries_needed: np.ndarray | None = None,
                 embed_texts: Any = embed_texts) -> EmbeddedCorpus:
    """Embed the documents and queries that some scenario uses (all, when not told); the rest stay zero.
    `embed_texts`: the engine's embedding function (runtime.embed.embed_texts, or the Ray engine's)."""
    doc_idx = np.arange(len(corpus.docs)) if docs_needed is None else docs_needed
    q_idx = np.arange(len(corpus.queries)) if queries_needed is None else queries_needed
    if progress:
        progress.start(f"embedding with {encoder.manifest.name}", len(doc_idx) + len(q_idx))
    advance = progress.advance if progress else None
    doc_texts = [passage_text(corpus.docs[i]) for i in doc_idx]
    doc_vecs, doc_stats = embed_texts(encoder, doc_texts, "passage", settings.cache_dir, settings.batch_size, advance)
    q_vecs, q_stats = embed_texts(encoder, [corpus.queries[i].text for i in q_idx], "query", settings.cache_dir,
                                  settings.batch_size, advance)
    if progress:
        progress.finish()
    dim = doc_vecs.shape[1] if len(doc_idx) else (q_vecs.shape[1] if len(q_idx) else int(encoder.manifest.dim or 1))
    docs = np.zeros((len(corpus.docs), dim), dtype=np.float32)
    queries = np.zeros((len(corpus.queries), dim), dtype=np.float32)
    docs[doc_idx] = doc_vecs
    queries[q_idx] = q_vecs
    truncation: dict[str, dict[str, Any]] = {
        "passage": _count_by_lang([corpus.docs[i].lang for i in doc_idx], doc_stats.truncated),
        "query": _count_by_lang([corpus.queries[i].lang for i in q_idx], q_stats.truncated),
        "passage_ids": _first_ids_by_lang([corpus.docs[i] for i in doc_idx], doc_stats.truncated),
        "query_ids": _first_ids_by_lang([corpus.queries[i] for i in q_idx], q_stats.truncated),
    }
    empty: dict[str, list[str]] = {
        "documents": [corpus.docs[int(i)].id for i in doc_idx[encoder.empty_texts(doc_stats.n_tokens, "passage")]],
        "queries": [corpus.queries[int(i)].id for i in q_idx[encoder.empty_texts(q_stats.n_tokens, "query")]]}
    return EmbeddedCorpus(docs, queries, truncation, {k: v for k, v in empty.items() if v})


def empty_text_notes(embedded: Sequence[EmbeddedCorpus], names: Sequence[str]) -> list[str]:
    """One note per model and kind of text that tokenised to nothing but the prefix and special tokens
    (zero-width or control characters only): their vectors say nothing about the text."""
    notes = []
    for emb, name in zip(embedded, names):
        for what, ids in emb.empty.items():
            shown = ", ".join(repr(i) for i in ids[:TRUNCATED_IDS_SHOWN])
            notes.append(f"{name}: {len(ids)} {what} empty after tokenisation (the model reads only its prefix): "
                         f"{shown}{', ...' if len(ids) > TRUNCATED_IDS_SHOWN else ''}")
    return notes


def _first_ids_by_lang(records: Sequence[Any], truncated: np.ndarray) -> dict[str, list[str]]:
    """The first few truncated ids per language (only languages with any), in corpus order."""
    out: dict[str, list[str]] = {}
    for i in np.flatnonzero(truncated).tolist():
        ids = out.setdefault(records[i].lang, [])
        if len(ids) < TRUNCATED_IDS_SHOWN:
            ids.append(records[i].id)
    return dict(sorted(out.items()))


def _count_by_lang(langs: Sequence[str], truncated: np.ndarray) -> dict[str, int]:
    counts = Counter(lang for lang, cut in zip(langs, truncated) if cut)
    return {lang: counts.get(lang, 0) for lang in sorted(set(langs))}


class DenseSystem:
    """Scores `queries @ docs.T` over each pool from vectors embedded once (`self.embedded`)."""

    info: ModelInfo
    embedded: EmbeddedCorpus | None = None

    @property
    def truncation(self) -> dict[str, dict[str, Any]]:
        return self.embedded.truncation if self.embedded is not None else {}

    def prepare(self, ctx: AuditContext) -> list[str]:
        raise NotImplementedError

    def vectors(self) -> EmbeddedCorpus:
        if self.embedded is None:
            raise RuntimeError(f"{self.info.name}: rank() before prepare()")
        return self.embedded

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> RetrievalResult:
        emb, settings = self.vectors(), ctx.settings
        queries = ctx.queries(scenario)
        qids, qlangs = [q.id for q in queries], [q.lang for q in queries]
        depth = max(settings.depth, settings.k)
        if ctx.session is not None and choose_index(settings.index, pool.size) == "exact":
            from ..engine.ray_engine import retrieve_ray

            result = retrieve_ray(ctx.session, emb.queries[scenario.queries], emb.docs[scenario.pool], qids, qlangs,
                                  scenario.relevant, pool, depth=depth, k=settings.k, excluded=scenario.excluded)
            return cast(RetrievalResult, result)
        return retrieve(emb.queries[scenario.queries], emb.docs[scenario.pool], qids, qlangs, scenario.relevant, pool,
                        depth=depth, k=settings.k, index=settings.index, hnsw=settings.hnsw,
                        excluded=scenario.excluded)

    def score_rows(self, scenario: Scenario) -> np.ndarray:
        """The full [queries, pool] score matrix (hybrid fusion reads it)."""
        emb = self.vectors()
        return np.asarray(emb.queries[scenario.queries] @ emb.docs[scenario.pool].T, dtype=np.float32)


class EncoderSystem(DenseSystem):
    """An exported ONNX model (kind "model")."""

    def __init__(self, encoder: Encoder, name: str | None = None) -> None:
        self.encoder = encoder
        self.info = model_info(encoder, name)

    def prepare(self, ctx: AuditContext) -> list[str]:
        if self.embedded is not None:
            return []
        embed_fn: Any = embed_texts
        if ctx.session is not None:
            from functools import partial

            from ..engine.ray_engine import embed_texts_ray

            embed_fn = partial(embed_texts_ray, ctx.session)
        needed = ctx.docs_needed if ctx.docs_needed.size else None
        self.embedded = embed_corpus(ctx.corpus, self.encoder, ctx.settings, ctx.progress, needed,
                                     ctx.queries_needed if needed is not None else None, embed_fn)
        return []


class ShiftedSystem(DenseSystem):
    """A model with its training-free shift applied to document vectors (it reuses the model's embeddings)."""

    def __init__(self, base: EncoderSystem, shift: Any) -> None:
        self.base, self.shift = base, shift
        self.info = replace(base.info, name=f"{base.info.name}+shift",
                            shift={"langs": shift.langs, "n_pairs": shift.n_pairs, "source": shift.source})

    def prepare(self, ctx: AuditContext) -> list[str]:
        emb = self.base.vectors()
        self.embedded = EmbeddedCorpus(self.shift.apply(emb.docs, [d.lang for d in ctx.corpus.docs]), emb.queries,
                                       emb.truncation)
        return []


class EmbedderSystem(DenseSystem):
    """A user's embedder (clbias.retrievers.Embedder): its vectors, clbias's exact search."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.info = user_info(embedder, "embedder")

    def prepare(self, ctx: AuditContext) -> list[str]:
        corpus = ctx.corpus
        doc_idx = ctx.docs_needed if ctx.docs_needed.size else np.arange(len(corpus.docs))
        q_idx = ctx.queries_needed if ctx.docs_needed.size else np.arange(len(corpus.queries))
        doc_vecs = _matrix(self.embedder.embed_documents([corpus.docs[i] for i in doc_idx]), len(doc_idx),
                           f"{self.info.name}.embed_documents")
        q_vecs = _matrix(self.embedder.embed_queries([corpus.queries[i] for i in q_idx]), len(q_idx),
                         f"{self.info.name}.embed_queries")
        dim = doc_vecs.shape[1]
        if q_vecs.shape[1] != dim:
            raise ValueError(f"{self.info.name}: query vectors have {q_vecs.shape[1]} dimensions, documents {dim}")
        docs = np.zeros((len(corpus.docs), dim), np.float32)
        queries = np.zeros((len(corpus.queries), dim), np.float32)
        docs[doc_idx], queries[q_idx] = doc_vecs, q_vecs
        self.embedded = EmbeddedCorpus(docs, queries, {})
        return []


def _matrix(vectors: Any, rows: int, what: str) -> np.ndarray:
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != rows:
        raise ValueError(f"{what} returned shape {out.shape}, expected ({rows}, dim)")
    if not np.isfinite(out).all():
        raise ValueError(f"{what} returned NaN or infinite values")
    return out
