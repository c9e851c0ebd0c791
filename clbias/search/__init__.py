"""Search over one pool: exact (numpy) or hnswlib, chosen by size with `index="auto"`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


from .exact import full_scores, rank_order, ranks_of
from .hnsw import HnswIndex, HnswParams

IndexKind = Literal["auto", "exact", "hnsw"]
# benchmarks/results/search.md (real e5 embeddings, default HnswParams): a one-off graph repays its build only
# after ~18-19k queries on one pool, at 11k and at 110k documents alike (build 0.2-0.4 ms/doc, exact search
# 0.35-3.1 ms/query); an audit asks ~300-3,300 queries per pool, and clbias.retrieval computes every exact
# score row anyway for the deep ranks, so in an audit the graph is extra cost at any size. `auto` therefore
# keeps exact search up to a million documents (the score batches are memory-capped).
AUTO_HNSW_THRESHOLD = 1_000_000


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
