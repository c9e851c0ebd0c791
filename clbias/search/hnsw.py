"""hnswlib index with the settings that hurt users made explicit.

`ip` on vectors we normalise ourselves (hnswlib's `cosine` keeps normalised copies; #203, #384);
`ef` is not persisted by hnswlib (PR #620), so it lives in a sidecar JSON and is set after every load;
k is clamped to the number of items (#321); builds are single-threaded by default so that the graph,
and therefore every reported number, is reproducible (#540).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_path, write_json_atomic


@dataclass(frozen=True)
class HnswParams:
    M: int = 16
    ef_construction: int = 200
    ef: int = 200
    seed: int = 100
    build_threads: int = 1


class HnswIndex:
    def __init__(self, index: Any, params: HnswParams, size: int) -> None:
        self.index = index
        self.params = params
        self.size = size

    @classmethod
    def build(cls, vectors: np.ndarray, params: HnswParams = HnswParams()) -> "HnswIndex":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=int(vectors.shape[1]))
        index.init_index(max_elements=max(1, len(vectors)), ef_construction=params.ef_construction,
                         M=params.M, random_seed=params.seed)
        index.set_num_threads(params.build_threads)
        index.add_items(np.ascontiguousarray(vectors, dtype=np.float32), np.arange(len(vectors)))
        index.set_ef(params.ef)
        return cls(index, params, len(vectors))

    def search(self, queries: np.ndarray, k: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Top-k pool indices and inner-product scores, best first."""
        k = min(k, self.size)
        self.index.set_ef(max(self.params.ef, k))
        self.index.set_num_threads(threads)
        labels, distances = self.index.knn_query(np.ascontiguousarray(queries, dtype=np.float32), k=k)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        with atomic_path(path) as tmp:
            self.index.save_index(str(tmp))
        write_json_atomic(path.with_suffix(path.suffix + ".json"), {"size": self.size, **asdict(self.params)})

    @classmethod
    def load(cls, path: str | Path, dim: int) -> "HnswIndex":
        import hnswlib

        path = Path(path)
        meta = json.loads(path.with_suffix(path.suffix + ".json").read_text())
        size = meta.pop("size")
        params = HnswParams(**meta)
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(path), max_elements=size)
        index.set_ef(params.ef)
        return cls(index, params, size)
