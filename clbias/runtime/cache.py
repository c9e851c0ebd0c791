"""On-disk embedding cache, so that re-auditing the same corpus with the same model skips the model.

Entries are keyed by (model, the full text the model sees, i.e. prefix + text). Each namespace (graph sha256 +
tokenizer sha256 + prefix + max length + pooling + normalisation) is a folder of append-only shards, one per
write: `STEM.keys.npy` (16-byte blake2b digests), `STEM.vecs.npy` (float32 rows), `STEM.ntok.npy` (int64, the
tokens each text needed before truncation, so that a fully cached text needs no tokenizer) and `STEM.sum.json`
(the sha256 of the three files). STEM is unique per writer (time, pid, random), every file is written to a temp
path and renamed, and the checksum file comes last: it is the commit mark, so concurrent writers never pair
one writer's keys with another's vectors and a crash never leaves a readable half shard. On load each shard is
verified against its checksums; a damaged one is dropped with a one-line warning naming it (its texts are then
simply embedded again). Files are read with allow_pickle=False.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np

from ..io import sha256_file, write_json_atomic, atomic_path

DIGEST = 16
SHARD_SCHEMA = "clbias.cache-shard/1"
_PARTS = ("keys", "vecs", "ntok")
log = logging.getLogger("clbias.cache")


def cache_root() -> Path:
    """The one root of everything clbias caches (embeddings, npm source tarballs): $CLBIAS_CACHE, else
    $XDG_CACHE_HOME/clbias, else ~/.cache/clbias. Read at call time, so the environment always wins."""
    if os.environ.get("CLBIAS_CACHE"):
        return Path(os.environ["CLBIAS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clbias"


def default_cache_dir() -> Path:
    """Where embeddings are cached by default."""
    return cache_root() / "embeddings"


_warned: set[str] = set()


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def make_private_dirs(path: Path) -> None:
    """Create `path` and any missing parents, each readable by its owner only (0700)."""
    missing = []
    for p in [path, *path.parents]:
        if p.exists() or p.is_symlink():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, 0o700)
        except FileExistsError:
            pass


def trusted_dir(path: Path) -> str | None:
    """Why a cache directory must not be trusted (owned by another user, or writable by group or others:
    anyone who can write there can plant vectors or hashes), or None when it is safe."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"is writable by {'group and others' if st.st_mode & 0o022 == 0o022 else 'group' if st.st_mode & 0o020 else 'others'} (mode {st.st_mode & 0o777:o}; chmod go-w it)"
    return None


def prepare_cache_dir(path: Path | None) -> Path | None:
    """The embedding cache directory to use, checked before any embedding work: created private (0700);
    refused (InputError) when another user owns it or group/others can write to it; None, with a one-line
    warning, when it cannot be used (a file in the way, read-only, full), so that the run goes on uncached."""
    from ..errors import InputError

    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        warn_once(f"clbias: warning: embedding cache {path} is not a directory: running without the cache")
        return None
    try:
        make_private_dirs(path)
    except OSError as exc:
        warn_once(f"clbias: warning: cannot create the embedding cache {path} ({exc.strerror or exc}): running "
                  f"without the cache")
        return None
    reason = trusted_dir(path)
    if reason:
        raise InputError(f"the embedding cache {reason}; refusing to use it (vectors read from it could have been "
                         f"planted): use --cache-dir, $CLBIAS_CACHE or --no-cache", path)
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        warn_once(f"clbias: warning: cannot write to the embedding cache {path} ({exc.strerror or exc}): running "
                  f"without the cache")
        return None
    return path


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=DIGEST).digest()


class DamagedShard(Exception):
    """A cache shard whose files do not match their checksums or shapes."""


class EmbeddingCache:
    def __init__(self, root: str | Path, namespace: str) -> None:
        self.dir = Path(root) / namespace
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._vectors: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []

    @staticmethod
    def namespace(model_sha256: str, prefix: str, max_length: int, pooling: str, normalize: bool, *,
                  tokenizer_sha256: str) -> str:
        """Everything that decides a vector besides the text: the graph, the tokenizer and the manifest's
        text handling. A retrained tokenizer with the same graph must not reuse the graph's vectors."""
        spec = f"{tokenizer_sha256}\x00{prefix}\x00{max_length}\x00{pooling}\x00{normalize}"
        return f"{model_sha256[:24]}-{hashlib.blake2b(spec.encode(), digest_size=8).hexdigest()}"

    def _part(self, stem: str, part: str) -> Path:
        return self.dir / f"{stem}.{part}.npy"

    def _read_shard(self, sums_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stem = sums_file.name.removesuffix(".sum.json")
        try:
            sums = json.loads(sums_file.read_text(encoding="utf-8"))
            expected = {part: sums["sha256"][part] for part in _PARTS}
            rows = int(sums["rows"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise DamagedShard(f"unreadable checksum file ({type(exc).__name__})") from None
        for part in _PARTS:
            file = self._part(stem, part)
            if not file.is_file():
                raise DamagedShard(f"{file.name} is missing")
            if sha256_file(file) != expected[part]:
                raise DamagedShard(f"{file.name} does not match its checksum")
        try:
            keys = np.load(self._part(stem, "keys"), allow_pickle=False)
            vecs = np.load(self._part(stem, "vecs"), allow_pickle=False, mmap_mode="r")
            counts = np.load(self._part(stem, "ntok"), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DamagedShard(f"unreadable ({type(exc).__name__})") from None
        if (keys.shape != (rows, DIGEST) or keys.dtype != np.uint8 or vecs.ndim != 2 or vecs.shape[0] != rows
                or vecs.dtype != np.float32 or counts.shape != (rows,)):
            raise DamagedShard("shapes do not match")
        if not np.isfinite(vecs).all():  # checksums match what was written; a NaN must still never be ranked
            raise DamagedShard("holds non-finite values (NaN or infinity)")
        return keys, vecs, counts

    def _drop(self, sums_file: Path, reason: str) -> None:
        stem = sums_file.name.removesuffix(".sum.json")
        log.warning("clbias: warning: embedding cache shard %s is damaged (%s): dropped, its texts are embedded "
                    "again", self.dir / stem, reason)
        for file in [sums_file] + [self._part(stem, part) for part in _PARTS]:
            try:
                file.unlink()
            except OSError:
                pass

    def _load(self) -> dict[bytes, tuple[int, int]]:
        if self._index is not None:
            return self._index
        index: dict[bytes, tuple[int, int]] = {}
        self._vectors = []
        self._counts = []
        # A shard without its checksum file is being written by another process (or was abandoned): not yet part
        # of the cache. Shards of older clbias versions live in namespaces this version never reads.
        for sums_file in sorted(self.dir.glob("*.sum.json")) if self.dir.is_dir() else []:
            try:
                keys, vecs, counts = self._read_shard(sums_file)
            except DamagedShard as exc:
                self._drop(sums_file, str(exc))
                continue
            shard = len(self._vectors)
            self._vectors.append(vecs)
            self._counts.append(counts)
            # Slices of the raw bytes, not a bytes-dtype view: numpy strips trailing NULs from `S16`
            # items, and 1 digest in 256 ends in one (those texts never hit the cache).
            raw = np.ascontiguousarray(keys).tobytes()
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
            if loc is not None:
                out[i] = self._counts[loc[0]][loc[1]]
        return out

    def store(self, keys: list[bytes], vectors: np.ndarray, n_tokens: np.ndarray | None = None) -> None:
        if not keys:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"expected {len(keys)} vector rows, got shape {vectors.shape}")
        counts = np.full(len(keys), -1, dtype=np.int64) if n_tokens is None else np.asarray(n_tokens, dtype=np.int64)
        parts = {"keys": np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), DIGEST),
                 "vecs": vectors, "ntok": counts}
        make_private_dirs(self.dir)
        stem = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        sums: dict[str, str] = {}
        for part, array in parts.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            data = buffer.getvalue()
            sums[part] = hashlib.sha256(data).hexdigest()
            with atomic_path(self._part(stem, part)) as tmp:
                tmp.write_bytes(data)
        write_json_atomic(self.dir / f"{stem}.sum.json",
                          {"schema": SHARD_SCHEMA, "rows": len(keys), "dim": int(vectors.shape[1]), "sha256": sums})
        self._index = None
