"""The Ray engine: embedding with Ray Data (`map_batches` over an actor pool of clbias encoders, each loading
the exported model once with a set thread count), and exact scoring of large pools as Ray tasks over query
chunks. Needs the `ray` extra; nothing here is imported by the local engine.

The driver writes the embedding store the local engine writes (runtime/cache.py), one atomic shard every
`shard_rows` results as they arrive, so an interrupted run resumes at shard granularity and a re-audit is warm
whichever engine embedded. Without an address (and without RAY_ADDRESS) a local Ray instance is started and
stopped around the call; on it the actor pool leaves CPU for Ray Data's read tasks (a pool that takes every
CPU stalls the pipeline).
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ClbiasError
from ..runtime.cache import EmbeddingCache, text_key
from ..runtime.encoder import EncodeStats, Encoder, Kind
from ..runtime.embed import check_finite, encoder_cache

INSTALL_HINT = "pip install 'clbias[ray]'"
_LOCAL_SCORING_MIN_CELLS = 200_000_000  # smaller pools are scored in-process: task overhead would dominate


class EngineError(ClbiasError):
    """The Ray engine cannot run: the extra is missing, the cluster is unreachable, or workers cannot work."""


@dataclass
class RayOptions:
    address: str | None = None  # None: $RAY_ADDRESS if set, else start a local instance
    num_cpus: int | None = None  # CPUs of a local instance (default: all)
    actors: int | None = None  # encoder actors (default: cluster CPUs // threads, one fewer on a local instance)
    threads: int = 1  # onnxruntime threads per actor
    batch_rows: int = 256  # texts per map_batches call
    shard_rows: int = 4096  # results per cache shard written by the driver
    max_restarts: int = 3  # an actor that dies is restarted and its batch retried, this many times
    extra_init: dict[str, Any] = field(default_factory=dict)


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError(f"--engine ray needs Ray Data, which is not installed: {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to the head's host:port, so an unreachable address fails in seconds with its cause."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(f"Ray address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise EngineError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})") from None


class RaySession:
    """Connect to a cluster (address or $RAY_ADDRESS) or start a local instance; stop only what we started."""

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()
        self.ray = _import_ray()
        self.started = False
        self.local = False

    def __enter__(self) -> "RaySession":
        ray = self.ray
        address = self.options.address or os.environ.get("RAY_ADDRESS") or None
        if ray.is_initialized():
            self.local = address is None
            return self
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
                                  **self.options.extra_init}
        if address:
            _check_reachable(address)
            try:
                ray.init(address=address, **kwargs)
            except Exception as exc:  # ray raises ConnectionError, RuntimeError, ... by version
                raise EngineError(f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}") from None
        else:
            ray.init(num_cpus=self.options.num_cpus, **kwargs)
            self.local = True
        self.started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.ray.shutdown()

    def cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def actor_plan(self) -> tuple[int, float]:
        """(actors, CPUs per actor): one CPU per onnxruntime thread, and CPU left for the read tasks."""
        threads = max(1, self.options.threads)
        cpus = self.cpus()
        if self.options.actors:
            actors = self.options.actors
        else:
            actors = max(1, cpus // threads - (1 if self.local else 0))
        per_actor = min(float(threads), max(0.25, (cpus - 0.5) / actors))
        return actors, per_actor

    def probe(self, encoder: Encoder) -> None:
        """One task on a worker imports clbias and verifies the model files against the driver's hash, so
        a missing install or an unreadable model directory is one clear line, before any work starts."""
        ray = self.ray

        @ray.remote(num_cpus=0, max_retries=0)
        def check(model_dir: str, onnx: str) -> str:
            from clbias.runtime.manifest import load_manifest

            return load_manifest(Path(model_dir), verify=True).files[onnx]

        try:
            sha = ray.get(check.remote(str(encoder.model_dir), encoder.onnx), timeout=600)
        except Exception as exc:
            raise EngineError(_worker_error(exc, encoder.model_dir)) from None
        if sha != encoder.sha256:
            raise EngineError(f"a Ray worker sees a different model at {encoder.model_dir} "
                              f"(sha256 {sha[:12]} vs {encoder.sha256[:12]} here)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _worker_error(exc: BaseException, model_dir: Path) -> str:
    text = str(exc)
    if "ModuleNotFoundError" in text and "clbias" in text:
        return f"Ray workers cannot import clbias: install it on every node ({INSTALL_HINT})"
    tail = [line for line in text.splitlines() if "Error" in line and ":" in line]
    cause = tail[-1].strip() if tail else _first_line(exc)
    return f"a Ray worker cannot load the model from {model_dir}: {cause}"


class EncoderActor:
    """One exported model per actor, loaded once; embeds batches of {"row", "text"}."""

    def __init__(self, model_dir: str, onnx: str, threads: int, kind: str, batch_size: int) -> None:
        self.encoder = Encoder.load(model_dir, onnx, threads)
        self.kind = kind
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        ids, stats = self.encoder.tokenize(texts, self.kind)  # type: ignore[arg-type]  # kind was checked as a Kind by the caller
        vectors = self.encoder.embed_ids(ids, self.batch_size)
        return {"row": np.asarray(batch["row"], np.int64), "vec": vectors.astype(np.float32),
                "ntok": np.asarray(stats.n_tokens, np.int64), "pid": np.full(len(texts), os.getpid(), np.int64)}


def embed_texts_ray(session: RaySession, encoder: Encoder, texts: Sequence[str], kind: Kind = "passage",
                    cache_dir: Path | None = None, batch_size: int = 32,
                    progress: Callable[[int], None] | None = None,
                    on_batch: Callable[[dict[str, np.ndarray]], None] | None = None) -> tuple[np.ndarray, EncodeStats]:
    """`runtime.embed.embed_texts` on Ray: same vectors, same cache. `on_batch` sees each result batch as it
    arrives (rows, vectors, token counts, worker pid)."""
    m = encoder.manifest
    prefix = encoder.prefix(kind)
    cache = None if cache_dir is None else encoder_cache(encoder, kind, cache_dir)
    keys = [text_key(prefix + t) for t in texts]
    dim = int(m.dim or 0)
    n_tokens = np.full(len(texts), -1, np.int64)
    hit = np.zeros(len(texts), bool)
    out: np.ndarray | None = None
    if cache is not None:
        hit, cached = cache.lookup(keys)
        n_tokens = cache.token_counts(keys)
        if cached is not None:
            out = np.empty((len(texts), cached.shape[1]), np.float32)
            out[hit] = cached
            if progress is not None:
                progress(int(hit.sum()))
    missing = np.flatnonzero(~hit)
    recount = np.flatnonzero(hit & (n_tokens < 0))
    if recount.size:  # old shards without token counts: tokenise here, as the local engine does
        n_tokens[recount] = encoder.tokenize([texts[i] for i in recount.tolist()], kind)[1].n_tokens
    if missing.size:
        session.probe(encoder)
        ray = session.ray
        actors, per_actor = session.actor_plan()
        _quiet_ray_data(ray)  # clbias shows its own progress bar
        ds = ray.data.from_items([{"row": i, "text": texts[i]} for i in missing.tolist()])
        ds = ds.map_batches(EncoderActor, fn_constructor_kwargs={
            "model_dir": str(encoder.model_dir), "onnx": encoder.onnx, "threads": session.options.threads,
            "kind": kind, "batch_size": batch_size}, batch_size=session.options.batch_rows, concurrency=actors,
            num_cpus=per_actor, batch_format="numpy", max_restarts=session.options.max_restarts,
            max_task_retries=session.options.max_restarts)
        pending: list[dict[str, np.ndarray]] = []
        n_pending = 0
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                if out is None:
                    out = np.empty((len(texts), batch["vec"].shape[1]), np.float32)
                check_finite(batch["vec"], encoder, [texts[i] for i in batch["row"]])
                out[batch["row"]] = batch["vec"]
                n_tokens[batch["row"]] = batch["ntok"]
                pending.append(batch)
                n_pending += len(batch["row"])
                if cache is not None and n_pending >= session.options.shard_rows:
                    _store(cache, keys, pending)
                    pending, n_pending = [], 0
                if on_batch is not None:
                    on_batch(batch)
                if progress is not None:
                    progress(len(batch["row"]))
        except ClbiasError:
            raise
        except Exception as exc:
            raise EngineError(_worker_error(exc, encoder.model_dir)) from None
        if cache is not None and pending:
            _store(cache, keys, pending)
    if out is None:
        out = np.empty((len(texts), dim), np.float32)
    return out, EncodeStats(n_tokens=n_tokens, truncated=n_tokens > encoder.max_length)


def _quiet_ray_data(ray: Any) -> None:
    import logging

    context = ray.data.DataContext.get_current()
    for name, value in (("enable_progress_bars", False), ("print_on_execution_start", False)):
        if hasattr(context, name):
            setattr(context, name, value)
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _store(cache: EmbeddingCache, keys: list[bytes], batches: list[dict[str, np.ndarray]]) -> None:
    rows = np.concatenate([b["row"] for b in batches])
    cache.store([keys[i] for i in rows], np.concatenate([b["vec"] for b in batches]),
                np.concatenate([b["ntok"] for b in batches]))


def retrieve_ray(session: RaySession, query_vecs: np.ndarray, doc_vecs: np.ndarray, qids: list[str],
                 qlangs: list[str], relevant: tuple[np.ndarray, ...], pool: Any, depth: int, k: int,
                 excluded: tuple[np.ndarray, ...] = (), chunks: int | None = None) -> Any:
    """`clbias.retrieval.retrieve` (exact index) as one Ray task per chunk of queries; the pool's vectors
    go to the object store once. Small pools are scored in-process. Same result as the local call."""
    from .. import retrieval
    from ..retrieval import RetrievalResult, retrieve

    n = len(query_vecs)
    if n * pool.size < _LOCAL_SCORING_MIN_CELLS and chunks is None:
        return retrieve(query_vecs, doc_vecs, qids, qlangs, relevant, pool, depth=depth, k=k, index="exact",
                        excluded=excluded)
    ray = session.ray
    parts = chunks or max(1, min(n, session.cpus()))
    cells = retrieval.MAX_CHUNK_CELLS
    step = retrieval.product_rows(pool.size, cells)  # cut where the local engine's matrix products cut
    size = -(-max(1, -(-n // parts)) // step) * step
    bounds = list(range(0, n, size)) + [n]

    @ray.remote(max_retries=2)
    def score(q: np.ndarray, docs: np.ndarray, a: int, b: int) -> Any:
        from clbias.retrieval import retrieve as local

        return local(q, docs, qids[a:b], qlangs[a:b], relevant[a:b], pool, depth=depth, k=k, index="exact",
                     excluded=excluded[a:b] if excluded else (), chunk_cells=cells).columns

    docs_ref = ray.put(np.ascontiguousarray(doc_vecs))
    futures = [score.remote(query_vecs[a:b], docs_ref, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    try:
        columns = [ray.get(f) for f in futures]
    except Exception as exc:
        raise EngineError(f"Ray scoring failed: {_first_line(exc)}") from None
    from ..metrics.columnar import ColumnarRuns

    return RetrievalResult(ColumnarRuns.concat(columns), "exact", {"depth": min(depth, pool.size)}, None)
