"""On-disk embedding cache, so that re-auditing the same corpus with the same model skips the model.

Entries are keyed by (model sha256, the full text the model sees, i.e. prefix + text). Each namespace
(model hash + prefix + max length + pooling) is a folder of append-only shards: `NNNNNN.keys.npy`
(16-byte blake2b digests), `NNNNNN.vecs.npy` (float32 rows) and `NNNNNN.ntok.npy` (int64, the tokens each
text needed before truncation, so that a fully cached text needs no tokenizer; shards written before it
existed simply have no token counts). Shards are written to a temp path and renamed, keys last, so a crash
never leaves a half shard; they are read with allow_pickle=False.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..io import atomic_path

DIGEST = 16


def cache_root() -> Path:
    """The one root of everything clbias caches (embeddings, npm source tarballs): $CLBIAS_CACHE, else
    $XDG_CACHE_HOME/clbias, else ~/.cache/clbias. Read at call time, so the environment always wins."""
    if os.environ.get("CLBIAS_CACHE"):
        return Path(os.environ["CLBIAS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clbias"


def default_cache_dir() -> Path:
    """Where embeddings are cached by default."""
    return cache_root() / "embeddings"


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=DIGEST).digest()


class EmbeddingCache:
    def __init__(self, root: str | Path, namespace: str) -> None:
        self.dir = Path(root) / namespace
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._vectors: list[np.ndarray] = []
        self._counts: list[np.ndarray | None] = []

    @staticmethod
    def namespace(model_sha256: str, prefix: str, max_length: int, pooling: str, normalize: bool) -> str:
        spec = f"{prefix}\x00{max_length}\x00{pooling}\x00{normalize}"
        return f"{model_sha256[:24]}-{hashlib.blake2b(spec.encode(), digest_size=6).hexdigest()}"

    def _load(self) -> dict[bytes, tuple[int, int]]:
        if self._index is not None:
            return self._index
        index: dict[bytes, tuple[int, int]] = {}
        self._vectors = []
        self._counts = []
        if self.dir.is_dir():
            for keys_file in sorted(self.dir.glob("*.keys.npy")):
                vecs_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".vecs.npy"))
                if not vecs_file.is_file():
                    continue
                keys = np.load(keys_file, allow_pickle=False)
                vecs = np.load(vecs_file, allow_pickle=False, mmap_mode="r")
                if keys.shape[0] != vecs.shape[0]:
                    continue
                counts_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".ntok.npy"))
                counts = np.load(counts_file, allow_pickle=False) if counts_file.is_file() else None
                shard = len(self._vectors)
                self._vectors.append(vecs)
                self._counts.append(counts if counts is not None and counts.shape == (len(keys),) else None)
                # Slices of the raw bytes, not a bytes-dtype view: numpy strips trailing NULs from `S16`
                # items, and 1 digest in 256 ends in one (those texts never hit the cache).
                raw = np.ascontiguousarray(keys, dtype=np.uint8).tobytes()
                digests = (raw[i:i + DIGEST] for i in range(0, len(raw), DIGEST))
                index.update(zip(digests, ((shard, r) for r in range(len(keys)))))
        self._index = index
        return index

    def lookup(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """Return (hit mask, vectors of the hits in order) for the given keys."""
        index = self._load()
        locations = [index.get(k) for k in keys]
        hit = np.fromiter((loc is not None for loc in locations), dtype=bool, count=len(keys))
        if not hit.any():
            return hit, None
        found = [loc for loc in locations if loc is not None]
        out = np.empty((len(found), self._vectors[found[0][0]].shape[1]), dtype=np.float32)
        shards = np.fromiter((s for s, _ in found), dtype=np.int64, count=len(found))
        rows = np.fromiter((r for _, r in found), dtype=np.int64, count=len(found))
        for shard in np.unique(shards):
            sel = shards == shard
            out[sel] = self._vectors[shard][rows[sel]]
        return hit, out

    def token_counts(self, keys: list[bytes]) -> np.ndarray:
        """Tokens each text needed before truncation, as stored with its vector; -1 where unknown."""
        index = self._load()
        out = np.full(len(keys), -1, dtype=np.int64)
        for i, key in enumerate(keys):
            loc = index.get(key)
            if loc is not None and self._counts[loc[0]] is not None:
                out[i] = self._counts[loc[0]][loc[1]]  # type: ignore[index]
        return out

    def store(self, keys: list[bytes], vectors: np.ndarray, n_tokens: np.ndarray | None = None) -> None:
        if not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.dir.glob("*.keys.npy"))
        number = int(existing[-1].name.split(".")[0]) + 1 if existing else 0
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), DIGEST)
        stem = f"{number:06d}"
        with atomic_path(self.dir / f"{stem}.vecs.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        if n_tokens is not None:
            with atomic_path(self.dir / f"{stem}.ntok.npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, np.asarray(n_tokens, dtype=np.int64), allow_pickle=False)
        with atomic_path(self.dir / f"{stem}.keys.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, key_array, allow_pickle=False)
        self._index = None
