"""The loss components of one batch: which texts each term anchors on, what it compares them with.

Paper (method.md section 4):
- `jsd`      sqrt-JSD between the dimension-softmax of p_en and p_tgt;
- `nce`      InfoNCE, anchor p_tgt, positive its q_en, negatives the batch's other q_en;
- `nce_doc`  (ablation) InfoNCE, anchor p_tgt, positive its p_en, negatives the batch's other p_en.
Ours (weights in TrainConfig; 0 = off):
- `mono`     retention: InfoNCE q_en -> p_en, and q_tgt -> p_tgt over same-language passages of the batch
             (rows with a target query), averaged;
- `distill`  retention: KL(base || tuned) of the same two monolingual in-batch score distributions (the
             base side without dropout, computed once per text; the tuned side as every other term);
- `query`    query side: InfoNCE q_tgt -> p_en (rows with a target query; negatives: the batch's p_en);
- `hard`     InfoNCE anchor p_tgt, positive its p_en, negatives the batch's other p_en plus the English
             passages the base model mined as closest to it while irrelevant.
Candidates that copy a row's positive (identical texts in a batch) are left out of its negatives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .config import TrainConfig
from .embedding import Embedder, FrozenEmbeddings

if TYPE_CHECKING:
    import torch


@dataclass
class Encoded:
    """Token ids of every triplet text, and group ids that mark identical texts (false negatives)."""

    query: list[list[int]]
    p_en: list[list[int]]
    p_tgt: list[list[int]]
    q_tgt: list[list[int] | None]
    query_group: np.ndarray
    p_en_group: np.ndarray
    p_tgt_group: np.ndarray
    q_tgt_group: np.ndarray  # -1 where a row has no target query
    lang: np.ndarray  # language code per row (an int per distinct language)
    truncated: int
    pad_id: int

    def __len__(self) -> int:
        return len(self.p_tgt)

    def texts(self) -> dict[str, Sequence[list[int] | None]]:
        return {"query": self.query, "p_en": self.p_en, "p_tgt": self.p_tgt, "q_tgt": self.q_tgt}

    def relevant(self, rows: Sequence[int] | np.ndarray, others: Sequence[int] | np.ndarray) -> np.ndarray:
        """[len(rows), len(others)] bool: `others[j]`'s English passage is relevant to row i's (the same
        English passage, or a passage of the same English query)."""
        r, o = np.asarray(rows), np.asarray(others)
        return ((self.p_en_group[r][:, None] == self.p_en_group[o][None, :])
                | (self.query_group[r][:, None] == self.query_group[o][None, :]))


@dataclass
class BatchLoss:
    """Everything a batch's loss needs besides its rows."""

    embedder: Embedder
    encoded: Encoded
    config: TrainConfig
    frozen: FrozenEmbeddings | None = None  # the base model's embeddings (distill, hard)
    hard_negatives: np.ndarray | None = None  # [n, k] triplet rows whose p_en is a mined negative, -1 none

    def __call__(self, rows: np.ndarray) -> dict[str, "torch.Tensor"]:
        import torch
        import torch.nn.functional as F

        from .losses import info_nce, score_distillation, sqrt_jsd

        cfg, enc = self.config, self.encoded
        device = self.embedder.device
        rows = np.asarray(rows)
        with_q = rows[[enc.q_tgt[r] is not None for r in rows]] if len(rows) else rows
        sub = torch.as_tensor(np.flatnonzero([enc.q_tgt[r] is not None for r in rows]), device=device)
        hard_rows = self._hard_rows(rows)

        def mask(a: np.ndarray, b: np.ndarray) -> "torch.Tensor":
            return torch.as_tensor(a[:, None] == b[None, :], device=device)

        needs_en = cfg.uses_jsd or cfg.uses_doc_nce or any(w > 0 for w in (
            cfg.mono_weight, cfg.distill_weight, cfg.query_weight, cfg.hard_weight))
        needs_query = cfg.uses_query_nce or cfg.mono_weight > 0 or cfg.distill_weight > 0
        needs_q_tgt = len(with_q) >= 2 and (cfg.mono_weight > 0 or cfg.distill_weight > 0 or cfg.query_weight > 0)
        # Order kept from the first trainer (target, English, query) so its runs reproduce exactly.
        groups: dict[str, list[list[int]]] = {"p_tgt": [enc.p_tgt[r] for r in rows]}
        if needs_en:
            groups["p_en"] = [enc.p_en[r] for r in rows]
        if needs_query:
            groups["query"] = [enc.query[r] for r in rows]
        if needs_q_tgt:
            groups["q_tgt"] = [enc.q_tgt[r] for r in with_q]
        if len(hard_rows):
            groups["hard"] = [enc.p_en[r] for r in hard_rows]
        emb = self.embedder.embed(groups)
        target, english, query = emb["p_tgt"], emb.get("p_en"), emb.get("query")
        parts: dict[str, torch.Tensor] = {}
        if cfg.uses_jsd:
            assert english is not None
            a, b = (english, target) if cfg.jsd_input == "raw" else (F.normalize(english, dim=-1),
                                                                      F.normalize(target, dim=-1))
            parts["jsd"] = sqrt_jsd(a, b, cfg.eps)
        if cfg.uses_query_nce:
            assert query is not None
            parts["nce"] = info_nce(target, query, cfg.tau, mask(enc.query_group[rows], enc.query_group[rows]))
        if cfg.uses_doc_nce:
            assert english is not None
            parts["nce_doc"] = info_nce(target, english, cfg.tau, mask(enc.p_en_group[rows], enc.p_en_group[rows]))
        if needs_q_tgt:
            same_tgt = (mask(enc.q_tgt_group[with_q], enc.q_tgt_group[with_q])
                        | mask(enc.p_tgt_group[with_q], enc.p_tgt_group[with_q])
                        | ~mask(enc.lang[with_q], enc.lang[with_q]))
        if cfg.mono_weight > 0:
            assert english is not None and query is not None
            terms = [info_nce(query, english, cfg.tau, torch.as_tensor(enc.relevant(rows, rows), device=device))]
            if needs_q_tgt:
                terms.append(info_nce(emb["q_tgt"], target[sub], cfg.tau, same_tgt))
            parts["mono"] = torch.stack(terms).mean()
        if cfg.distill_weight > 0:
            assert english is not None and query is not None and self.frozen is not None
            base = self.frozen
            terms = [score_distillation(query, english, base.get("query", rows), base.get("p_en", rows), cfg.tau)]
            if needs_q_tgt:
                terms.append(score_distillation(emb["q_tgt"], target[sub], base.get("q_tgt", with_q),
                                                base.get("p_tgt", with_q), cfg.tau, exclude=~mask(
                                                    enc.lang[with_q], enc.lang[with_q])))
            parts["distill"] = torch.stack(terms).mean()
        if cfg.query_weight > 0 and not needs_q_tgt:
            parts["query"] = target.sum() * 0.0  # fewer than 2 target queries in this batch: nothing to rank
        elif cfg.query_weight > 0:
            assert english is not None
            # candidates: the p_en of rows with a target query (positives, in order), then the other rows'
            rest = torch.as_tensor(np.setdiff1d(np.arange(len(rows)), sub.cpu().numpy()), device=device)
            candidates = torch.cat([english[sub], english[rest]])
            others = np.concatenate([with_q, rows[rest.cpu().numpy()]])
            parts["query"] = info_nce(emb["q_tgt"], candidates, cfg.tau,
                                      torch.as_tensor(enc.relevant(with_q, others), device=device))
        if cfg.hard_weight > 0:
            assert english is not None
            extra = emb.get("hard")
            candidates = english if extra is None else torch.cat([english, extra])
            others = rows if extra is None else np.concatenate([rows, hard_rows])
            parts["hard"] = info_nce(target, candidates, cfg.tau,
                                     torch.as_tensor(enc.relevant(rows, others), device=device))
        return parts

    def _hard_rows(self, rows: np.ndarray) -> np.ndarray:
        if self.config.hard_weight <= 0 or self.hard_negatives is None:
            return np.zeros(0, dtype=np.int64)
        mined = self.hard_negatives[rows].reshape(-1)
        seen = {int(g) for g in self.encoded.p_en_group[rows]}  # passages already in the batch add nothing
        fresh = []
        for r in (int(r) for r in mined if r >= 0):
            group = int(self.encoded.p_en_group[r])
            if group not in seen:
                seen.add(group)
                fresh.append(r)
        return np.array(fresh, dtype=np.int64)


def planned_rows(n: int, config: TrainConfig, total_steps: int) -> np.ndarray:
    """Every triplet row some micro-batch of the run uses (the anchors hard negatives are mined for)."""
    from .trainer import batch_indices

    used: set[int] = set()
    for micro in range(total_steps * config.grad_accum):
        used.update(int(r) for r in batch_indices(n, config.batch_size, config.seed, micro))
        if len(used) == n:
            break
    return np.array(sorted(used), dtype=np.int64)


def mine(frozen: FrozenEmbeddings, encoded: Encoded, anchors: np.ndarray, k: int, pool_size: int,
         seed: int) -> np.ndarray:
    """[n, k] mined English negatives (triplet rows) for `anchors`; other rows -1. The pool is one row per
    distinct English passage, at most `pool_size` of them (seeded sample)."""
    from .embedding import mine_hard_negatives

    _, first = np.unique(encoded.p_en_group, return_index=True)
    pool = np.sort(first)
    if len(pool) > pool_size:
        pool = np.sort(np.random.default_rng([seed, 7]).choice(pool, pool_size, replace=False))
    out = np.full((len(encoded), k), -1, dtype=np.int64)
    out[anchors] = mine_hard_negatives(frozen, anchors.tolist(), pool.tolist(), encoded.relevant(anchors, pool), k)
    return out

