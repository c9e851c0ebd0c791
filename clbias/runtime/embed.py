"""Embed texts through the cache: the one code path the audit and `clbias embed` share."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ModelError
from .cache import EmbeddingCache, text_key, warn_once
from .encoder import EncodeStats, Encoder, Kind


def encoder_cache(encoder: Encoder, kind: Kind, cache_dir: Path) -> EmbeddingCache:
    """The cache of one model's vectors of one kind: keyed by graph, tokenizer and the manifest's text handling."""
    m = encoder.manifest
    return EmbeddingCache(cache_dir, EmbeddingCache.namespace(encoder.sha256, encoder.prefix(kind), m.max_length,
                                                              m.pooling, m.normalize,
                                                              tokenizer_sha256=m.files[m.tokenizer]))


def check_finite(vectors: np.ndarray, encoder: Encoder, texts: Sequence[str]) -> None:
    """Refuse vectors with NaN or infinity: ranked, they would give a number that means nothing."""
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1)) if vectors.size else np.empty(0, dtype=np.int64)
    if bad.size:
        example = texts[int(bad[0])] if int(bad[0]) < len(texts) else ""
        raise ModelError(f"{encoder.model_dir / encoder.onnx}: the model produced non-finite values (NaN or "
                         f"infinity) for {bad.size} of {len(vectors)} texts (first: {example[:60]!r}); refusing to "
                         f"rank them")


def embed_texts(encoder: Encoder, texts: Sequence[str], kind: Kind = "passage",
                cache_dir: Path | None = None, batch_size: int = 32,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, EncodeStats]:
    """Embeddings in input order. Cached rows skip the model, and the tokenizer too when the cache holds
    their token count, so truncation is always reported."""
    if cache_dir is None:
        ids, stats = encoder.tokenize(texts, kind)
        vectors = encoder.embed_ids(ids, batch_size, progress)
        check_finite(vectors, encoder, texts)
        return vectors, stats
    prefix = encoder.prefix(kind)
    cache = encoder_cache(encoder, kind, cache_dir)
    keys = [text_key(prefix + t) for t in texts]
    hit, cached = cache.lookup(keys)
    n_tokens = cache.token_counts(keys)
    if progress is not None and hit.any():
        progress(int(hit.sum()))
    missing = np.flatnonzero(~hit)
    to_tokenize = np.flatnonzero(~hit | (n_tokens < 0))
    ids_of: dict[int, list[int]] = {}
    if to_tokenize.size:
        fresh_ids, fresh_stats = encoder.tokenize([texts[i] for i in to_tokenize.tolist()], kind)
        n_tokens[to_tokenize] = fresh_stats.n_tokens
        ids_of = dict(zip(to_tokenize.tolist(), fresh_ids))
    fresh = encoder.embed_ids([ids_of[i] for i in missing.tolist()], batch_size, progress) if missing.size else None
    if fresh is not None:
        check_finite(fresh, encoder, [texts[i] for i in missing.tolist()])
    first = cached if cached is not None else fresh
    dim = first.shape[1] if first is not None else (encoder.manifest.dim or 0)
    out = np.empty((len(texts), dim), dtype=np.float32)
    if cached is not None:
        out[hit] = cached
    if fresh is not None:
        out[missing] = fresh
        try:
            cache.store([keys[i] for i in missing], fresh, n_tokens[missing])
        except OSError as exc:  # a disk that filled up during the run: the vectors are good, only uncached
            warn_once(f"clbias: warning: could not write to the embedding cache {cache_dir} "
                      f"({exc.strerror or exc}); these vectors were not cached")
    return out, EncodeStats(n_tokens=n_tokens, truncated=n_tokens > encoder.max_length)
