"""Validation during training: retrieval quality of the model being trained, on triplets it never sees.

Per language X of the validation triplets, as the audit's scenarios do it over their pools:
- `val_multi_max_r_norm`: Multi pool = the English and X passages of X's triplets; every English query and
  every X query (q_tgt, where the triplet has one) has both versions of its passage relevant; Max@R_norm
  (docs/method.md, section 3), averaged over all queries of all languages;
- `val_mono_ndcg@10`: Mono-Same pools (English passages for English queries, X passages for X queries),
  one relevant passage per query; nDCG@10, averaged likewise.
Ranks count the passages scoring strictly higher (ties resolved in the relevant passage's favour), so the
numbers are comparable step to step but can read a little higher than the audit's on tied scores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import InputError
from .data import Triplet

if TYPE_CHECKING:
    from .embedding import Embedder
    from .terms import Encoded

MULTI = "val_multi_max_r_norm"
MONO = "val_mono_ndcg@10"


def check_disjoint(train: Sequence[Triplet], val: Sequence[Triplet], val_path: str | Path) -> None:
    """Refuses validation triplets that share a unit (parallel_id) or an English passage with training."""
    ids = {t.parallel_id for t in train if t.parallel_id}
    passages = {t.p_en for t in train}
    for t in val:
        if t.parallel_id and t.parallel_id in ids:
            raise InputError(f"parallel_id {t.parallel_id!r} is also in the training triplets", val_path,
                             line=t.line, field="parallel_id")
        if t.p_en in passages:
            raise InputError("the English passage is also in the training triplets", val_path, line=t.line,
                             field="p_en")


@dataclass
class Validation:
    """Validation triplets, already tokenised, measured every `every` optimiser steps (and before step 1)."""

    encoded: "Encoded"
    every: int

    def due(self, step: int, total: int) -> bool:
        return step == total or (self.every > 0 and step % self.every == 0)

    def measure(self, embedder: "Embedder") -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        enc = self.encoded
        with_q = [i for i, row in enumerate(enc.q_tgt) if row is not None]
        groups: dict[str, list[list[int]]] = {"query": enc.query, "p_en": enc.p_en, "p_tgt": enc.p_tgt}
        if with_q:
            groups["q_tgt"] = [enc.q_tgt[i] for i in with_q]  # type: ignore[misc]  # with_q holds the rows whose q_tgt is not None
        was_training = embedder.model.training
        embedder.model.eval()
        try:
            with torch.no_grad():
                emb = {k: F.normalize(v.float(), dim=-1).cpu().numpy() for k, v in _embed_chunked(embedder, groups).items()}
        finally:
            embedder.model.train(was_training)
        q_tgt = np.full((len(enc), emb["query"].shape[1]), np.nan, dtype=np.float32)
        if with_q:
            q_tgt[with_q] = emb["q_tgt"]
        multi: list[float] = []
        mono: list[float] = []
        for lang in np.unique(enc.lang):
            rows = np.flatnonzero(enc.lang == lang)
            en, tgt = emb["p_en"][rows], emb["p_tgt"][rows]
            pool = np.concatenate([en, tgt])
            queries = [(emb["query"][rows], en)] + ([(q_tgt[rows], tgt)] if with_q else [])
            for q, own in queries:
                keep = ~np.isnan(q[:, 0])
                if not keep.any():
                    continue
                idx = np.flatnonzero(keep)
                scores = q[idx] @ pool.T
                rel_en, rel_tgt = scores[np.arange(idx.size), idx], scores[np.arange(idx.size), len(rows) + idx]
                deepest = np.maximum(_rank(scores, rel_en), _rank(scores, rel_tgt))
                multi.extend(_max_r_norm(deepest, pool.shape[0], 2))
                own_scores = q[idx] @ own.T
                mono.extend(_ndcg10(_rank(own_scores, own_scores[np.arange(idx.size), idx])))
        return {MULTI: float(np.mean(multi)) if multi else math.nan,
                MONO: float(np.mean(mono)) if mono else math.nan}


def _embed_chunked(embedder: "Embedder", groups: dict[str, list[list[int]]], chunk: int = 64) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for name, rows in groups.items():
        out[name] = torch.cat([embedder.embed({"x": rows[s:s + chunk]})["x"] for s in range(0, len(rows), chunk)])
    return out


def _rank(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    return 1 + (scores > relevant[:, None]).sum(axis=1)


def _max_r_norm(deepest: np.ndarray, size: int, n_rel: int) -> list[float]:
    clipped = np.clip(deepest, n_rel, size).astype(float)
    span = math.log2(size) - math.log2(n_rel)
    if span <= 0:
        return [100.0] * len(deepest)
    return list(100.0 * (math.log2(size) - np.log2(clipped)) / span)


def _ndcg10(rank: np.ndarray) -> list[float]:
    return list(np.where(rank <= 10, 100.0 / np.log2(rank + 1.0), 0.0))
