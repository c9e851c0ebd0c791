"""Validation during training: retrieval quality of the model being trained, on triplets it never sees.

Per language X of the validation triplets, as the audit's scenarios do it over their pools:
- `val_multi_max_r_norm`: Multi pool = the English and X passages of X's triplets; every English query and
  every X query (q_tgt, where the triplet has one) has both versions of its passage relevant; Max@R_norm
  (docs/method.md, section 3), averaged over all queries of all languages;
- `val_mono_ndcg@10`: Mono-Same pools (English passages for English queries, X passages for X queries),
  one relevant passage per query; nDCG@10, averaged likewise;
- `val_twin_pref`: twin preference (docs/method.md, section 6) of X queries in the Multi pool: over the irrelevant
  parallel pairs (English passage, X passage) with a member in the top `TWIN_HEAD` of the pool, the % where
  the English one scores higher (ties count half); pooled per language, then averaged over languages.
  50 = neutral. `val_twin_dev`: the mean over languages of |twin preference - 50| (0 = neutral everywhere),
  what `clbias train --select neutral` minimises. Both NaN without target queries (q_tgt).
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
TWIN = "val_twin_pref"
TWIN_DEV = "val_twin_dev"
TWIN_HEAD = 100


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
        twin: list[float] = []
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
                if own is tgt:
                    pref = twin_preference(scores, idx, len(rows))
                    if not math.isnan(pref):
                        twin.append(pref)
        return {MULTI: float(np.mean(multi)) if multi else math.nan,
                MONO: float(np.mean(mono)) if mono else math.nan,
                TWIN: float(np.mean(twin)) if twin else math.nan,
                TWIN_DEV: float(np.mean(np.abs(np.asarray(twin) - 50.0))) if twin else math.nan}


def twin_preference(scores: np.ndarray, units: np.ndarray, n: int, head: int = TWIN_HEAD) -> float:
    """% of irrelevant twin pairs where the English passage scores above the target one.

    `scores` [queries, 2n]: columns 0..n-1 the English passages, n..2n-1 their target twins; query r's own
    unit is `units[r]` (its pair is relevant, so left out). A pair counts when one member ranks in the top
    `head` of the pool (a member outside the head ranks below the one inside, which the scores already say).
    """
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, scores.shape[1] + 1)
    en, tgt = scores[:, :n], scores[:, n:]
    in_head = np.minimum(ranks[:, :n], ranks[:, n:]) <= head
    in_head[np.arange(len(units)), units] = False
    if not in_head.any():
        return math.nan
    wins = (en > tgt).astype(float) + 0.5 * (en == tgt)
    return float(100.0 * wins[in_head].mean())


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
