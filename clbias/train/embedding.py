"""Pooled embeddings of one training step's texts, and the frozen base model's, computed once per text.

Two ways to run the same sums:
- plain (the first trainer's): one forward per kind of text (target passages, English passages, queries),
  each padded to its longest text;
- bucketed (default): the step's *distinct* texts in one list, sorted by length and cut into chunks that
  are each padded to their own longest text; where to cut is chosen to minimise padded tokens plus a fixed
  per-chunk cost. Without dropout both give the same embeddings up to float rounding (a test checks it);
  with dropout only the random masks differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

CHUNK_OVERHEAD_TOKENS = 128  # a forward call's fixed cost and small-GEMM inefficiency, in padded tokens


def plan_chunks(lengths: Sequence[int], overhead: int = CHUNK_OVERHEAD_TOKENS) -> list[list[int]]:
    """Positions of `lengths`, grouped into chunks that minimise sum(chunk size x longest in chunk) +
    overhead x chunks. Optimal chunks are runs of the length-sorted order, so a DP over that order suffices."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j texts of `order`
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):  # chunk = order[i:j], padded to lengths[order[i]] (the longest)
            cost = best[i] + (j - i) * lengths[order[i]] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    chunks: list[list[int]] = []
    j = n
    while j > 0:
        chunks.append(order[cut[j]:j])
        j = cut[j]
    return chunks[::-1]


@dataclass
class Embedder:
    """Runs `model` on token-id rows and mean/CLS-pools them (unnormalised: the losses normalise)."""

    model: Any
    pad_id: int
    device: "torch.device"
    pooling: str
    bucket: bool = True
    tokens: int = 0  # real (non-padding) tokens forwarded so far
    padded: int = 0  # tokens forwarded including padding
    squared: int = 0  # sum of squared real lengths (attention FLOPs grow with it)
    _token_types: bool | None = field(default=None, repr=False)

    def embed(self, groups: dict[str, list[list[int]]]) -> dict[str, "torch.Tensor"]:
        """Embeddings for each named group of rows; with `bucket`, a text occurring twice is run once."""
        if not self.bucket:
            return {name: self._forward(rows) for name, rows in groups.items()}
        import torch

        index: dict[tuple[int, ...], int] = {}
        unique: list[list[int]] = []
        where = {}
        for name, rows in groups.items():
            positions = []
            for row in rows:
                key = tuple(row)
                if key not in index:
                    index[key] = len(unique)
                    unique.append(row)
                positions.append(index[key])
            where[name] = positions
        parts, order = [], []
        for chunk in plan_chunks([len(r) for r in unique]):
            parts.append(self._forward([unique[i] for i in chunk]))
            order.extend(chunk)
        stacked = torch.cat(parts)
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.as_tensor(order)] = torch.arange(len(order))
        inverse = inverse.to(stacked.device)
        return {name: stacked[inverse[torch.as_tensor(pos, device=stacked.device)]] for name, pos in where.items()}

    def _forward(self, rows: list[list[int]]) -> "torch.Tensor":
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        self.tokens += sum(len(r) for r in rows)
        self.squared += sum(len(r) ** 2 for r in rows)
        self.padded += ids.numel()
        ids, mask = ids.to(self.device), mask.to(self.device)
        extra = {"token_type_ids": torch.zeros_like(ids)} if self._takes_token_types() else {}
        hidden = self.model(input_ids=ids, attention_mask=mask, **extra).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def _takes_token_types(self) -> bool:
        if self._token_types is None:
            import inspect

            forward = getattr(self.model, "_orig_mod", self.model).forward  # torch.compile wraps the module
            self._token_types = "token_type_ids" in inspect.signature(forward).parameters
        return self._token_types


class FrozenEmbeddings:
    """The frozen base model's embeddings of training texts, each computed once and then reused
    (distillation targets and hard-negative mining need the same vectors every epoch)."""

    def __init__(self, embedder: Embedder, texts: dict[str, Sequence[list[int] | None]]) -> None:
        self.embedder = embedder
        self.texts = texts
        self._cache: dict[tuple[str, int], "torch.Tensor"] = {}

    def get(self, kind: str, rows: Sequence[int] | np.ndarray, chunk: int = 64) -> "torch.Tensor":
        import torch

        missing = [int(r) for r in dict.fromkeys(int(r) for r in rows) if (kind, int(r)) not in self._cache]
        with torch.no_grad():
            for start in range(0, len(missing), chunk):
                part = missing[start:start + chunk]
                rows_ids = [self.texts[kind][r] for r in part]
                if any(r is None for r in rows_ids):
                    raise ValueError(f"no {kind} text for some rows")
                vectors = self.embedder.embed({"x": rows_ids})["x"]  # type: ignore[dict-item]  # rows_ids holds no None (checked above)
                for r, v in zip(part, vectors):
                    self._cache[(kind, r)] = v
        return torch.stack([self._cache[(kind, int(r))] for r in rows])


def mine_hard_negatives(frozen: FrozenEmbeddings, anchors: Sequence[int], pool: Sequence[int],
                        excluded: "np.ndarray", k: int) -> np.ndarray:
    """For each anchor row (its target passage), the `k` pool rows whose English passage the base model
    finds closest, skipping pool rows that `excluded(anchor, pool)` marks as relevant. Returns [len(anchors),
    k] pool row numbers, -1 where fewer than k candidates remain."""
    import torch.nn.functional as F

    a = F.normalize(frozen.get("p_tgt", anchors).float(), dim=-1)
    p = F.normalize(frozen.get("p_en", pool).float(), dim=-1)
    scores = (a @ p.T).cpu().numpy()
    scores[excluded] = -np.inf
    out = np.full((len(anchors), k), -1, dtype=np.int64)
    pool_arr = np.asarray(pool, dtype=np.int64)
    for i, row in enumerate(scores):
        top = np.argsort(-row, kind="stable")[:k]
        top = top[np.isfinite(row[top])]
        out[i, : len(top)] = pool_arr[top]
    return out
