"""Embed texts through the cache: the one code path the audit and `clbias embed` share."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .cache import EmbeddingCache, text_key
from .encoder import EncodeStats, Encoder, Kind


def encoder_cache(encoder: Encoder, kind: Kind, cache_dir: Path) -> EmbeddingCache:
    """The cache of one model's vectors of one kind: keyed by graph, tokenizer and the manifest's text handling."""
    m = encoder.manifest
    return EmbeddingCache(cache_dir, EmbeddingCache.namespace(encoder.sha256, encoder.prefix(kind), m.max_length,
                                                              m.pooling, m.normalize,
                                                              tokenizer_sha256=m.files[m.tokenizer]))


def embed_texts(encoder: Encoder, texts: Sequence[str], kind: Kind = "passage",
                cache_dir: Path | None = None, batch_size: int = 32,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, EncodeStats]:
    """Embeddings in input order. Cached rows skip the model, and the tokenizer too when the cache holds
    their token count, so truncation is always reported."""
    if cache_dir is None:
        ids, stats = encoder.tokenize(texts, kind)
        return encoder.embed_ids(ids, batch_size, progress), stats
    prefix = encoder.prefix(kind)
    cache = encoder_cache(encoder, kind, cache_dir)
    keys = [text_key(prefix + t) for t in texts]
    hit, cached = cache.lookup(keys)
    n_tokens = cache.token_counts(keys)
    if progress is not None and hit.any():
        progress(int(hit.sum()))
    missing = np.flatnonzero(~hit)
    to_tokenize = np.flatnonzero(~hit | (n_tokens < 0))
    ids: dict[int, list[int]] = {}
    if to_tokenize.size:
        fresh_ids, fresh_stats = encoder.tokenize([texts[i] for i in to_tokenize], kind)
        n_tokens[to_tokenize] = fresh_stats.n_tokens
        ids = dict(zip(to_tokenize.tolist(), fresh_ids))
    fresh = encoder.embed_ids([ids[i] for i in missing.tolist()], batch_size, progress) if missing.size else None
    dim = (cached if cached is not None else fresh).shape[1] if len(texts) else (m.dim or 0)  # type: ignore[union-attr]
    out = np.empty((len(texts), dim), dtype=np.float32)
    if cached is not None:
        out[hit] = cached
    if fresh is not None:
        out[missing] = fresh
        cache.store([keys[i] for i in missing], fresh, n_tokens[missing])
    return out, EncodeStats(n_tokens=n_tokens, truncated=n_tokens > encoder.max_length)
