"""Embed texts through the cache: the one code path the audit and `clbias embed` share."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .cache import EmbeddingCache, text_key
from .encoder import EncodeStats, Encoder, Kind


def embed_texts(encoder: Encoder, texts: Sequence[str], kind: Kind = "passage",
                cache_dir: Path | None = None, batch_size: int = 32,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, EncodeStats]:
    """Embeddings in input order. Cached rows skip the model; tokenisation still runs so that
    truncation is always reported (it is cheap next to the model)."""
    ids, stats = encoder.tokenize(texts, kind)
    if cache_dir is None:
        return encoder.embed_ids(ids, batch_size, progress), stats
    m = encoder.manifest
    prefix = encoder.prefix(kind)
    cache = EmbeddingCache(cache_dir, EmbeddingCache.namespace(encoder.sha256, prefix, m.max_length, m.pooling,
                                                               m.normalize))
    keys = [text_key(prefix + t) for t in texts]
    hit, cached = cache.lookup(keys)
    if progress is not None and hit.any():
        progress(int(hit.sum()))
    missing = np.flatnonzero(~hit)
    fresh = encoder.embed_ids([ids[i] for i in missing], batch_size, progress) if missing.size else None
    dim = (cached if cached is not None else fresh).shape[1] if len(texts) else (m.dim or 0)  # type: ignore[union-attr]
    out = np.empty((len(texts), dim), dtype=np.float32)
    if cached is not None:
        out[hit] = cached
    if fresh is not None:
        out[missing] = fresh
        cache.store([keys[i] for i in missing], fresh)
    return out, stats
