"""The training losses: the paper's two (docs/method.md, section 4) and our distillation term.

InfoNCE also serves our monolingual, query-side and hard-negative terms (trainer.py picks their anchors and
candidates). torch is imported inside the functions."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

LN2 = math.log(2.0)


def sqrt_jsd(english: "torch.Tensor", target: "torch.Tensor", eps: float = 1e-8) -> "torch.Tensor":
    """Mean over the batch of sqrt(JSD(P || Q) + eps), P/Q = softmax over the dimensions of each row.

    JSD = (KL(P||M) + KL(Q||M)) / 2 with M = (P + Q) / 2, in nats, so 0 <= JSD <= ln 2 and the loss lies in
    [sqrt(eps), sqrt(ln 2 + eps)]. eps sits inside the root so the gradient is finite at P = Q.
    """
    import torch

    log_p = torch.log_softmax(english.float(), dim=-1)
    log_q = torch.log_softmax(target.float(), dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - LN2
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    jsd = (0.5 * (kl_pm + kl_qm)).clamp_min(0.0)
    return torch.sqrt(jsd + eps).mean()


def info_nce(anchors: "torch.Tensor", candidates: "torch.Tensor", tau: float = 0.05,
             exclude: "torch.Tensor | None" = None) -> "torch.Tensor":
    """InfoNCE: row i of `anchors` [B, d] should pick candidate i of `candidates` [C, d] (C >= B) over every
    other candidate; candidates beyond B are extra negatives (mined hard negatives).

    Cosine similarity / tau, cross-entropy over the candidates. `exclude[i, j]` (bool, [B, C]) leaves
    candidate j out of row i's softmax: copies of i's positive (the same query text twice in a batch), which
    should not be pushed away, or candidates in another language for a monolingual term. The positive itself
    is never excluded.
    """
    import torch
    import torch.nn.functional as F

    logits = _cosine_logits(anchors, candidates, tau)
    if exclude is not None:
        logits = logits.masked_fill(exclude & ~_positive_mask(logits), float("-inf"))
    labels = torch.arange(len(anchors), device=anchors.device)
    return F.cross_entropy(logits, labels)


def score_distillation(tuned_q: "torch.Tensor", tuned_p: "torch.Tensor", base_q: "torch.Tensor",
                       base_p: "torch.Tensor", tau: float = 0.05,
                       exclude: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Mean over rows of KL(P_base || P_tuned), P = softmax over a query's in-batch passages of cosine / tau.

    The base scores are constants (the frozen starting model): the term is 0 while the tuned model ranks
    each batch exactly as the base did and grows as its same-language score distribution drifts. `exclude`
    ([B, C] bool) leaves candidates out of both distributions (here: passages in another language).
    """
    import torch

    tuned = _cosine_logits(tuned_q, tuned_p, tau)
    base = _cosine_logits(base_q.detach(), base_p.detach(), tau)
    if exclude is not None:
        keep = ~exclude | _positive_mask(tuned)
        tuned = tuned.masked_fill(~keep, float("-inf"))
        base = base.masked_fill(~keep, float("-inf"))
    else:
        keep = torch.ones_like(tuned, dtype=torch.bool)
    log_t = torch.log_softmax(tuned, dim=-1)
    log_b = torch.log_softmax(base, dim=-1)
    terms = torch.where(keep, log_b.exp() * (log_b - log_t), torch.zeros_like(log_t))
    return terms.sum(-1).mean()


def _cosine_logits(anchors: "torch.Tensor", candidates: "torch.Tensor", tau: float) -> "torch.Tensor":
    import torch.nn.functional as F

    return F.normalize(anchors.float(), dim=-1) @ F.normalize(candidates.float(), dim=-1).T / tau


def _positive_mask(logits: "torch.Tensor") -> "torch.Tensor":
    import torch

    rows, cols = logits.shape
    return torch.eye(rows, cols, dtype=torch.bool, device=logits.device)
