"""Search over one pool: exact (numpy) or hnswlib, chosen by size with `index="auto"`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


from .exact import full_scores, rank_order, ranks_of
from .hnsw import HnswIndex, HnswParams

IndexKind = Literal["auto", "exact", "hnsw"]
# Below this many documents a batched matmul beats building a graph (benchmarks/search.py measures it).
AUTO_HNSW_THRESHOLD = 50_000


def choose_index(kind: IndexKind, pool_size: int, threshold: int = AUTO_HNSW_THRESHOLD) -> Literal["exact", "hnsw"]:
    if kind == "auto":
        return "hnsw" if pool_size >= threshold else "exact"
    return kind


@dataclass(frozen=True)
class IndexInfo:
    kind: str
    params: dict[str, Any]


__all__ = ["AUTO_HNSW_THRESHOLD", "HnswIndex", "HnswParams", "IndexInfo", "IndexKind", "choose_index",
           "full_scores", "rank_order", "ranks_of"]
